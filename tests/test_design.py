"""DESIGN.md is the map of the code: every module of minidl/ is listed in its layout, and
every file it names exists (so a move or a new module that forgets the map fails here)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DESIGN = (ROOT / "DESIGN.md").read_text()


def layout_entries() -> set:
    """Paths of the layout block: a folder line ends in '/', a file line names one or more
    .py files (several on a line share the folder above them)."""
    block = DESIGN.split("## Layout", 1)[1].split("```")[1]
    entries, folders = set(), []
    for line in block.splitlines():
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip())) // 2
        words = line.split()
        if words[0].endswith("/"):
            folders[depth:] = [words[0].rstrip("/")]
            entries.add("/".join(folders))
            continue
        folder = "/".join(folders[:depth])
        for word in words:
            if word.endswith(".py"):
                entries.add(f"{folder}/{word}" if folder else word)
            elif not re.fullmatch(r"[\w./]+", word) or "." not in word:
                break  # the description starts
    return entries


def test_every_module_of_the_package_is_on_the_map():
    """Each module is on its own layout line, or (for a folder summarized on one line, such
    as vision/metrics/) named in that folder's description. minidl/bench is one entry."""
    entries = layout_entries()
    block = DESIGN.split("## Layout", 1)[1].split("```")[1]
    modules = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "minidl").rglob("*.py")
                     if p.name != "__init__.py" and "__pycache__" not in p.parts)
    missing = [m for m in modules if m not in entries and not m.startswith("minidl/bench/")
               and not (m.rsplit("/", 1)[0] in entries and Path(m).name in block)]
    assert not missing, f"DESIGN.md's layout does not list: {missing}"


def test_every_file_the_map_names_exists():
    named = set(re.findall(r"`((?:minidl|tests|lessons|examples)/[\w/]+\.(?:py|json))`", DESIGN))
    named |= {e for e in layout_entries() if e.endswith(".py")}
    examples = {p for p in named if "/x/" in p or "NN_" in p}  # placeholders in the prose
    absent = sorted(p for p in named - examples if not (ROOT / p).exists())
    assert not absent, f"DESIGN.md names files that do not exist: {absent}"
