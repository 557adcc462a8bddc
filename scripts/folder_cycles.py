#!/usr/bin/env python3
"""Folder-level include graph of the sources, and its cycles.

Every #include "..." of a project file in a .h/.cc under common/, coordinator/, site_agent/,
tools/, simulator/ and experiments/ (tests/ and bench/ with --all) becomes an edge between two
folders: common/<name> (common/data/hospital on its own), coordinator (its top level),
coordinator/<sub>, tools/<sub>, site_agent, simulator, proto (the generated fedmed.pb.h /
fedmed.grpc.pb.h). Prints each pair of folders whose includes go both ways and every larger
cycle (strongly connected components), with one include per edge as evidence. Then the library
graph from the CMakeLists.txt files: a cycle in the DEPS of fedmed_library targets, or a target
whose sources include a header whose .cc belongs to a library it does not link (directly or
through DEPS). Exit status 1 when there is any. --edges prints the whole folder graph.

  scripts/folder_cycles.py [--all] [--edges]
"""
import argparse
import os
import re
import sys
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE_DIRS = ["common", "coordinator", "site_agent", "tools", "simulator", "experiments"]
EXTRA_DIRS = ["tests", "bench"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def folder_of(path):
    """The folder (graph node) of a path relative to the root, or None outside the graph."""
    parts = path.split("/")
    if parts[0] == "proto" or os.path.basename(path).startswith("fedmed.") and ".pb." in path:
        return "proto"
    if len(parts) < 2:
        return None
    if parts[0] == "common":
        if parts[1] == "data" and len(parts) > 3 and parts[2] == "hospital":
            return "common/data/hospital"
        return "common/" + parts[1] if len(parts) > 2 else "common"
    if parts[0] in ("coordinator", "tools", "tests"):
        return parts[0] + "/" + parts[1] if len(parts) > 2 else parts[0]
    return parts[0]


def collect(dirs):
    edges = defaultdict(list)  # (from, to) -> [(file, included)]
    for top in dirs:
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if not name.endswith((".h", ".cc", ".cpp", ".hpp")):
                    continue
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, ROOT)
                src = folder_of(rel)
                with open(full, encoding="utf-8", errors="replace") as f:
                    text = f.read()
                for inc in INCLUDE.findall(text):
                    if not os.path.exists(os.path.join(ROOT, inc)) and ".pb." not in inc:
                        continue  # a header of a dependency, or a generated one of CMake's
                    dst = folder_of(inc)
                    if src and dst and src != dst:
                        edges[(src, dst)].append((rel, inc))
    return edges


def targets():
    """{target: (sources relative to the root, direct project DEPS)} from the CMakeLists.txt files
    (fedmed_library / fedmed_executable / fedmed_test)."""
    call = re.compile(r"\b(fedmed_library|fedmed_executable|fedmed_test)\(([^)]*)\)", re.S)
    out = {}
    for dirpath, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith((".", "build"))]
        if "CMakeLists.txt" not in files:
            continue
        with open(os.path.join(dirpath, "CMakeLists.txt"), encoding="utf-8") as f:
            text = re.sub(r"#[^\n]*", "", f.read())
        for _, body in call.findall(text):
            words = body.split()
            name, section, sources, deps = words[0], None, [], []
            for w in words[1:]:
                if w in ("SOURCES", "DEPS", "LABELS", "TIMEOUT", "SERIAL"):
                    section = w
                elif section == "SOURCES":
                    sources.append(os.path.relpath(os.path.join(dirpath, w), ROOT))
                elif section == "DEPS" and w.startswith("fedmed_"):
                    deps.append(w)
            out[name] = (sources, deps)
    return out


def check_libraries(dirs):
    """Includes of a header whose .cc is in another library than the includer's, where the
    includer's target does not link that library (directly or through its DEPS); and cycles in
    the DEPS graph. Header-only headers are not checked (they need no link)."""
    tgts = targets()
    lib_of = {}
    for name, (sources, _) in tgts.items():
        if name.startswith("fedmed_") and not name.endswith("_test"):
            for src in sources:
                lib_of.setdefault(src, name)
    problems = []

    def closure(name):
        seen, todo = set(), [name]
        while todo:
            for d in tgts.get(todo.pop(), ((), ()))[1]:
                if d not in seen:
                    seen.add(d)
                    todo.append(d)
        return seen

    for name, (sources, _) in sorted(tgts.items()):
        reach = closure(name)
        if name in reach:
            problems.append(f"library cycle: {name} reaches itself through its DEPS")
        for src in sources:
            if not src.split("/")[0] in dirs:
                continue
            files = [src] + [os.path.splitext(src)[0] + ".h"]
            for f in files:
                full = os.path.join(ROOT, f)
                if not os.path.exists(full):
                    continue
                with open(full, encoding="utf-8", errors="replace") as fh:
                    for inc in INCLUDE.findall(fh.read()):
                        impl = os.path.splitext(inc)[0] + ".cc"
                        owner = lib_of.get(impl)
                        if owner and owner != name and owner not in reach:
                            problems.append(f"{name}: {f} includes {inc} ({owner}), "
                                            f"not among its DEPS")
    return sorted(set(problems))


def strongly_connected(nodes, succ):
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in succ[v]:
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
            out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--all", action="store_true", help="also tests/ and bench/")
    parser.add_argument("--edges", action="store_true", help="print every folder edge")
    args = parser.parse_args()
    edges = collect(SOURCE_DIRS + (EXTRA_DIRS if args.all else []))
    succ = defaultdict(set)
    nodes = set()
    for a, b in edges:
        succ[a].add(b)
        nodes.update((a, b))
    if args.edges:
        for (a, b), why in sorted(edges.items()):
            print(f"{a} -> {b}  ({len(why)} includes, e.g. {why[0][0]}: {why[0][1]})")
        print()
    both_ways = sorted((a, b) for (a, b) in edges if a < b and (b, a) in edges)
    for a, b in both_ways:
        print(f"both ways: {a} <-> {b}")
        for x, y in ((a, b), (b, a)):
            for f, inc in edges[(x, y)][:3]:
                print(f"  {f} includes {inc}")
    cycles = [c for c in strongly_connected(nodes, succ) if len(c) > 2]
    for comp in cycles:
        print("cycle among: " + ", ".join(comp))
        for a in comp:
            for b in comp:
                if (a, b) in edges:
                    f, inc = edges[(a, b)][0]
                    print(f"  {a} -> {b}: {f} includes {inc}")
    problems = check_libraries(SOURCE_DIRS + (EXTRA_DIRS if args.all else []))
    for p in problems:
        print(p)
    if not both_ways and not cycles:
        print(f"no folder-level include cycles among {len(nodes)} folders")
    if not problems:
        print("every include of a library's header is backed by a link to that library")
    return 1 if both_ways or cycles or problems else 0


if __name__ == "__main__":
    sys.exit(main())
