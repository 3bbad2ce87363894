"""PyTorch code, with only its imports changed, runs on minidl and gives the right numbers.

Each test is a small program in the style of a well-known PyTorch tutorial (the
60-minute blitz, "What is torch.nn really?", the custom Function tutorial, the
MNIST, VAE and word-language-model examples, saving a checkpoint, torchvision's
detection post-processing), written against ``torch`` / ``nn`` / ``F`` / ``optim``
names that here are minidl's. What each program computes is checked against NumPy.
The idioms that still need an edit are listed in README's "Coming from PyTorch".
"""

import math

import numpy as np
import pytest

import minidl as torch
import minidl.nn as nn
import minidl.nn.functional as F
import minidl.optim as optim
from minidl.optim.lr_scheduler import StepLR
from minidl.utils.data import DataLoader, TensorDataset
from minidl.vision import batched_nms, box_iou


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def test_blitz_tensors_numpy_bridge_and_autograd():
    x = torch.rand(5, 3)
    assert x.size() == (5, 3) and x.dtype == torch.float32
    x = x.new_ones(5, 3, dtype=torch.double)
    assert x.dtype == torch.float64
    x = torch.randn_like(x, dtype=torch.float)
    y = torch.rand(5, 3)
    expected = x.numpy() + y.numpy()
    y.add_(x)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-6)
    assert x.view(-1, 5).size() == (3, 5)

    a = torch.ones(5)
    b = a.numpy()
    a.add_(1)  # the array and the tensor share memory, as in PyTorch
    assert b[0] == 2
    c = np.ones(5)
    d = torch.from_numpy(c)
    np.add(c, 1, out=c)
    assert d[0].item() == 2

    x = torch.ones(2, 2, requires_grad=True)
    out = ((x + 2) * (x + 2) * 3).mean()
    out.backward()
    np.testing.assert_allclose(x.grad, np.full((2, 2), 4.5))  # d/dx 3(x+2)^2/4 = 1.5(x+2)

    x = torch.randn(3, requires_grad=True)
    y = x * 2
    y.backward(torch.tensor([0.1, 1.0, 0.0001]))  # a vector-Jacobian product
    np.testing.assert_allclose(x.grad, [0.2, 2.0, 0.0002], rtol=1e-6)
    with torch.no_grad():
        assert not (x ** 2).requires_grad
    assert not x.detach().requires_grad and bool(x.eq(x.detach()).all())


def test_nn_really_from_scratch_then_refactored():
    n, bs, lr = 256, 64, 0.5
    x_train = torch.randn(n, 20)
    true_weights = np.random.default_rng(0).standard_normal((20, 3))
    y_train = torch.tensor(np.argmax(x_train.numpy() @ true_weights, axis=1))

    weights = torch.randn(20, 3) / math.sqrt(20)
    weights.requires_grad_()
    bias = torch.zeros(3, requires_grad=True)

    def log_softmax(x):
        return x - x.exp().sum(-1).log().unsqueeze(-1)

    def model(xb):
        return log_softmax(xb @ weights + bias)

    def nll(inputs, target):
        return -inputs[range(target.shape[0]), target].mean()

    def accuracy(out, yb):
        return (torch.argmax(out, dim=1) == yb).float().mean()

    before = accuracy(model(x_train), y_train).item()
    for _ in range(5):
        for i in range((n - 1) // bs + 1):
            xb, yb = x_train[i * bs: i * bs + bs], y_train[i * bs: i * bs + bs]
            loss = nll(model(xb), yb)
            loss.backward()
            with torch.no_grad():  # the tutorial's manual update: -= on the weights
                weights -= weights.grad * lr
                bias -= bias.grad * lr
                weights.grad = None
                bias.grad = None
    after = accuracy(model(x_train), y_train).item()
    assert after > max(before, 0.8)
    # the hand-written log_softmax and nll are the library's
    np.testing.assert_allclose(nll(model(x_train), y_train).item(),
                               F.cross_entropy(x_train @ weights + bias, y_train).item(), rtol=1e-5)

    class Lambda(nn.Module):
        def __init__(self, func):
            super().__init__()
            self.func = func

        def forward(self, x):
            return self.func(x)

    cnn = nn.Sequential(
        Lambda(lambda x: x.view(-1, 1, 4, 5)),
        nn.Conv2d(1, 8, kernel_size=3, stride=1, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), Lambda(lambda x: x.view(x.size(0), -1)), nn.Linear(8, 3))
    opt = optim.SGD(cnn.parameters(), lr=0.1, momentum=0.9)
    train_dl = DataLoader(TensorDataset(x_train, y_train), batch_size=bs, shuffle=True)

    def mean_loss():
        with torch.no_grad():
            losses, nums = zip(*[(F.cross_entropy(cnn(xb), yb).item(), len(xb))
                                 for xb, yb in train_dl])
        return np.sum(np.multiply(losses, nums)) / np.sum(nums)

    start = mean_loss()
    for _ in range(3):
        for xb, yb in train_dl:
            loss = F.cross_entropy(cnn(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad()
    assert mean_loss() < start


def test_custom_function_written_with_staticmethods():
    class MyReLU(torch.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return input.clip(0)  # forward sees a NumPy array (PyTorch: input.clamp(min=0))

        @staticmethod
        def backward(ctx, grad_output):
            (input,) = ctx.saved_tensors
            grad_input = grad_output.copy()
            grad_input[input < 0] = 0
            return grad_input

    x = torch.tensor([-2.0, -0.5, 0.5, 3.0], requires_grad=True)
    y = MyReLU.apply(x)
    (y * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    np.testing.assert_allclose(y.numpy(), [0, 0, 0.5, 3.0])
    np.testing.assert_allclose(x.grad, [0, 0, 3.0, 4.0])


def test_mnist_example_loop_with_adadelta_steplr_and_devices(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super(Net, self).__init__()  # noqa: UP008 (the examples' older spelling)
            self.conv1 = nn.Conv2d(1, 4, 3, 1)
            self.conv2 = nn.Conv2d(4, 8, 3, 1)
            self.dropout1 = nn.Dropout(0.25)
            self.fc1 = nn.Linear(8 * 4 * 4, 10)

        def forward(self, x):
            x = F.relu(self.conv1(x))
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = torch.flatten(self.dropout1(x), 1)
            return F.log_softmax(self.fc1(x), dim=1)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = Net().to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
    data = torch.randn(32, 1, 12, 12)
    target = torch.tensor(np.arange(32) % 10)
    loader = DataLoader(TensorDataset(data, target), batch_size=8)

    def test_loss():
        model.eval()
        total, correct = 0.0, 0
        with torch.no_grad():
            for xb, yb in loader:
                output = model(xb.to(device))
                total += F.nll_loss(output, yb, reduction="sum").item()
                pred = output.argmax(dim=1, keepdim=True)
                correct += pred.eq(yb.view_as(pred)).sum().item()
        return total / len(loader.dataset), correct

    start, _ = test_loss()
    for _ in range(3):
        model.train()
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            optimizer.zero_grad()
            loss = F.nll_loss(model(xb), yb)
            loss.backward()
            optimizer.step()
        scheduler.step()
    end, correct = test_loss()
    assert end < start and correct > 3  # memorizing 32 images: well above chance
    assert scheduler.get_last_lr() == [pytest.approx(0.7 ** 3)]
    torch.save(model.state_dict(), tmp_path / "mnist_cnn.pt")
    restored = Net()
    restored.load_state_dict(torch.load(tmp_path / "mnist_cnn.pt"))
    restored.eval()
    np.testing.assert_array_equal(restored(data).numpy(), model(data).numpy())


def test_vae_example_loss():
    class VAE(nn.Module):
        def __init__(self):
            super(VAE, self).__init__()  # noqa: UP008 (as the example writes it)
            self.fc1 = nn.Linear(16, 8)
            self.fc21 = nn.Linear(8, 2)
            self.fc22 = nn.Linear(8, 2)
            self.fc3 = nn.Linear(2, 8)
            self.fc4 = nn.Linear(8, 16)

        def encode(self, x):
            h1 = F.relu(self.fc1(x))
            return self.fc21(h1), self.fc22(h1)

        def reparameterize(self, mu, logvar):
            std = torch.exp(0.5 * logvar)
            return mu + torch.randn_like(std) * std

        def decode(self, z):
            return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

        def forward(self, x):
            mu, logvar = self.encode(x.view(-1, 16))
            return self.decode(self.reparameterize(mu, logvar)), mu, logvar

    def loss_function(recon_x, x, mu, logvar):
        bce = F.binary_cross_entropy(recon_x, x.view(-1, 16), reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return bce, kld

    model = VAE()
    data = torch.rand(6, 1, 4, 4)
    recon, mu, logvar = model(data)
    bce, kld = loss_function(recon, data, mu, logvar)
    r, x = recon.numpy().astype(np.float64), data.numpy().reshape(6, 16)
    m, lv = mu.numpy().astype(np.float64), logvar.numpy().astype(np.float64)
    np.testing.assert_allclose(bce.item(), -np.sum(x * np.log(r) + (1 - x) * np.log(1 - r)),
                               rtol=1e-5)
    np.testing.assert_allclose(kld.item(), 0.5 * np.sum(m ** 2 + np.exp(lv) - 1 - lv),
                               rtol=1e-4, atol=1e-6)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    optimizer.zero_grad()
    (bce + kld).backward()
    optimizer.step()
    with torch.no_grad():
        sample = model.decode(torch.randn(5, 2)).cpu()
        comparison = torch.cat([data[:2], recon.view(6, 1, 4, 4)[:2]])
    assert sample.view(5, 1, 4, 4).shape == (5, 1, 4, 4) and comparison.shape == (4, 1, 4, 4)


def test_checkpoint_saved_and_resumed_as_in_the_pytorch_recipe(tmp_path):
    model = nn.Linear(3, 2)
    optimizer = optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    path = tmp_path / "model.pt"
    torch.save({"epoch": 5, "model_state_dict": model.state_dict(),
                "optimizer_state_dict": optimizer.state_dict(), "loss": 0.25}, path)

    model2 = nn.Linear(3, 2)
    optimizer2 = optim.SGD(model2.parameters(), lr=0.001, momentum=0.9)
    checkpoint = torch.load(path, weights_only=True, map_location="cpu")
    model2.load_state_dict(checkpoint["model_state_dict"])
    optimizer2.load_state_dict(checkpoint["optimizer_state_dict"])
    assert checkpoint["epoch"] == 5 and checkpoint["loss"] == 0.25
    np.testing.assert_array_equal(model2.weight.numpy(), model.weight.numpy())
    # the momentum buffers came back: the next steps match
    for m, o in ((model, optimizer), (model2, optimizer2)):
        o.zero_grad()
        m(torch.ones(4, 3)).sum().backward()
        o.step()
    np.testing.assert_allclose(model2.weight.numpy(), model.weight.numpy(), rtol=1e-6)


def test_word_language_model_loop():
    class RNNModel(nn.Module):
        def __init__(self, ntoken, ninp, nhid, nlayers, dropout=0.2):
            super().__init__()
            self.ntoken, self.nhid, self.nlayers = ntoken, nhid, nlayers
            self.drop = nn.Dropout(dropout)
            self.encoder = nn.Embedding(ntoken, ninp)
            self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout)
            self.decoder = nn.Linear(nhid, ntoken)
            nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
            nn.init.zeros_(self.decoder.bias)

        def forward(self, input, hidden):
            output, hidden = self.rnn(self.drop(self.encoder(input)), hidden)
            decoded = self.decoder(self.drop(output)).view(-1, self.ntoken)
            return F.log_softmax(decoded, dim=1), hidden

        def init_hidden(self, bsz):
            weight = next(self.parameters())
            return (weight.new_zeros(self.nlayers, bsz, self.nhid),
                    weight.new_zeros(self.nlayers, bsz, self.nhid))

    def repackage_hidden(h):
        return h.detach() if isinstance(h, torch.Tensor) else tuple(repackage_hidden(v) for v in h)

    def batchify(data, bsz):
        nbatch = data.size(0) // bsz
        return data.narrow(0, 0, nbatch * bsz).view(bsz, -1).t().contiguous()

    text = torch.tensor(np.arange(402) % 7)  # a periodic sequence the model can learn
    train_data = batchify(text, 4)
    model = RNNModel(7, 8, 16, 2)
    criterion = nn.NLLLoss()
    optimizer = optim.Adam(model.parameters(), lr=0.02)
    bptt, losses = 10, []
    for _ in range(6):
        hidden = model.init_hidden(4)
        for i in range(0, train_data.size(0) - 1, bptt):
            seq_len = min(bptt, len(train_data) - 1 - i)
            data, targets = train_data[i:i + seq_len], train_data[i + 1:i + 1 + seq_len].view(-1)
            model.zero_grad()
            hidden = repackage_hidden(hidden)
            output, hidden = model(data, hidden)
            loss = criterion(output, targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            optimizer.step()
            losses.append(loss.item())
    assert math.exp(np.mean(losses[-5:])) < 0.5 * math.exp(np.mean(losses[:5]))


def test_detection_post_processing():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10]],
                         dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.01])
    labels = torch.tensor([1, 1, 2, 1])
    keep = scores > 0.05
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    keep = batched_nms(boxes, scores, labels, 0.5)[:100]
    assert keep.tolist() == [0, 2]  # box 1 overlaps box 0 (IoU 81/119) in the same class
    (confident,) = torch.where(scores > 0.75)
    assert confident.tolist() == [0, 1]
    np.testing.assert_allclose(box_iou(boxes, boxes)[0, 1].item(), 81 / 119, rtol=1e-6)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(min=0, max=55)
    assert boxes[2].tolist() == [50, 50, 55, 60]
