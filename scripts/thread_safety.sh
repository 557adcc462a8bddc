#!/usr/bin/env bash
# Clang's thread-safety analysis (-Wthread-safety, common/util/thread_annotations.h) over the
# files whose locking is annotated, as a syntax-only pass with the flags of build/'s
# compile_commands.json: any warning fails. Needs a configured build/ (scripts/build.sh build).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
FILES=(coordinator/round_flow.cc coordinator/round_stages.cc coordinator/round_end.cc coordinator/call_limits.cc
       coordinator/event_loop.cc coordinator/round_flow_snapshot.cc coordinator/round_admin.cc
       coordinator/round_resume.cc coordinator/partial_uploads.cc
       common/crypto/crl.cc common/transport/client_auth.cc)
command -v clang++-14 > /dev/null || scripts/deps.sh
python3 - "$BUILD" "${FILES[@]}" <<'PY'
import json, os, shlex, subprocess, sys
build, files = sys.argv[1], sys.argv[2:]
commands = {os.path.realpath(c["file"]): c for c in json.load(open(os.path.join(build, "compile_commands.json")))}
failed = False
for f in files:
    c = commands.get(os.path.realpath(f))
    if c is None:
        sys.exit(f"{f}: not in {build}/compile_commands.json")
    args = shlex.split(c["command"]) if "command" in c else c["arguments"]
    # Keep include paths, definitions and the language standard; drop gcc-only and output flags.
    keep, i = [], 1
    while i < len(args):
        a = args[i]
        if a == "-isystem" and i + 1 < len(args):
            keep += [a, args[i + 1]]
            i += 1
        elif a.startswith(("-I", "-D", "-std=", "-isystem")) or a == "-pthread":
            keep.append(a)
        i += 1
    cmd = ["clang++-14", "-fsyntax-only", "-Wthread-safety", "-Wthread-safety-beta", "-Werror"] + \
          keep + [os.path.realpath(f)]
    r = subprocess.run(cmd, cwd=c["directory"], capture_output=True, text=True)
    print(f"{f}: {'ok' if r.returncode == 0 else 'FAILED'}")
    if r.returncode != 0:
        failed = True
        sys.stderr.write(r.stderr)
sys.exit(1 if failed else 0)
PY
