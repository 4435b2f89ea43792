#!/usr/bin/env python3
"""Import graph of emolab's `src/` at the level of its top modules (one node per file or folder
directly under `src/`): the circles (strongly connected components) and the imports that run from
a lower layer of the data flow back up. The layers are those of docs/architecture.md.

    python3 scripts/import_graph.py            # summary; exit status 1 on a circle or an
                                               # upward import
    python3 scripts/import_graph.py --edges    # every edge with the files that make it
"""
import re
import sys
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"

# Layer of each top module, from the ground up. A module may import its own layer and those below.
LAYERS = [
    # Leaf libraries: import nothing of the crate above them.
    ["util", "dsp", "charts", "metrics", "config", "runlock"],
    # Inputs and the two on-disk formats every stage writes into: the feature cache and run folders.
    ["audio", "corpus", "cache", "results"],
    ["synth", "encoders"],
    ["features", "embedding"],
    ["split"],
    ["models"],
    ["train", "calibration"],
    ["importance", "speakers"],
    ["experiment"],
    ["prepare"],
    ["infer", "ensemble", "timeline"],
    ["runner", "sweep"],
    ["work"],
    ["cluster", "cross", "status"],
    ["report"],
    ["bench", "speakers_bench", "doctor"],
    ["main", "cli"],
]
LAYER = {m: i for i, group in enumerate(LAYERS) for m in group}


def top_module(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".rs")


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//")[0] if "//" in line and '"' not in line.split("//")[0] else line
                     for line in text.splitlines() if not line.lstrip().startswith("//"))


def edges():
    found = defaultdict(set)
    for path in sorted(SRC.rglob("*.rs")):
        me = top_module(path)
        if me == "lib":
            continue
        text = strip_comments(path.read_text())
        prefixes = ["crate::"] + (["emolab::"] if me in ("main", "cli") else [])
        for prefix in prefixes:
            for m in re.finditer(re.escape(prefix) + r"\{?([a-z_][a-z0-9_]*)", text):
                target = m.group(1)
                if target != me and (SRC / target).exists() or (SRC / f"{target}.rs").exists():
                    if target != me:
                        found[(me, target)].add(str(path.relative_to(SRC)))
            # `use crate::{a, b::c}` lists
            for m in re.finditer(re.escape(prefix) + r"\{([^}]*)\}", text):
                for name in re.findall(r"(?:^|,)\s*([a-z_][a-z0-9_]*)", m.group(1)):
                    if name != me and ((SRC / name).exists() or (SRC / f"{name}.rs").exists()):
                        found[(me, name)].add(str(path.relative_to(SRC)))
    return found


def circles(nodes, found):
    graph = defaultdict(set)
    for a, b in found:
        graph[a].add(b)
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main():
    found = edges()
    nodes = {top_module(p) for p in SRC.rglob("*.rs")} - {"lib"}
    unknown = sorted(n for n in nodes if n not in LAYER)
    comps = circles(nodes, found)
    upward = sorted((a, b) for a, b in found if a in LAYER and b in LAYER and LAYER[b] > LAYER[a])
    print(f"{len(nodes)} top modules, {len(found)} imports between them")
    if unknown:
        print("modules with no layer (add them to LAYERS):", ", ".join(unknown))
    print(f"circles: {len(comps)}")
    for c in comps:
        print("  " + " <-> ".join(c))
    print(f"upward imports: {len(upward)}")
    for a, b in upward:
        print(f"  {a} -> {b}  ({', '.join(sorted(found[(a, b)]))})")
    if "--edges" in sys.argv:
        for (a, b), files in sorted(found.items()):
            print(f"{a} -> {b}: {', '.join(sorted(files))}")
    sys.exit(1 if comps or unknown or upward else 0)


if __name__ == "__main__":
    main()
