#!/usr/bin/env bash
# Finds the PneumoniaMNIST file: $FEDMED_DATA, then ../shared/data, then ~/.cache/fedmed/data.
# Prints the data root on stdout. If none has it, says so and offers to download the official file
# from the MedMNIST Zenodo record (record 6496656), checking its SHA-256 before using it.
set -euo pipefail
cd "$(dirname "$0")/.."
FILE=medmnist/pneumoniamnist.npz
URL=https://zenodo.org/records/6496656/files/pneumoniamnist.npz
SHA256=e1792d3f03751cb101e99f19a63b3c1941436c988665f47853417b05be250cd8
CACHE="${HOME}/.cache/fedmed/data"

for root in "${FEDMED_DATA:-}" ../shared/data "$CACHE"; do
  if [ -n "$root" ] && [ -f "$root/$FILE" ]; then
    (cd "$root" && pwd)
    exit 0
  fi
done

echo "fedmed: $FILE was not found under \$FEDMED_DATA (${FEDMED_DATA:-unset}), ../shared/data or $CACHE." >&2
answer="${FEDMED_DOWNLOAD:-}"
if [ -z "$answer" ] && [ -t 0 ]; then
  read -r -p "Download it (4.2 MB, CC BY 4.0) from $URL? [y/N] " answer
fi
case "$answer" in
  y|Y|yes|1) ;;
  *) echo "fedmed: set FEDMED_DATA to a folder holding $FILE, or run with FEDMED_DOWNLOAD=1." >&2; exit 1 ;;
esac
mkdir -p "$CACHE/medmnist"
tmp="$CACHE/$FILE.part"
curl -fL --retry 3 -o "$tmp" "$URL"
echo "$SHA256  $tmp" | sha256sum -c --quiet - || { rm -f "$tmp"; echo "fedmed: SHA-256 mismatch, file discarded" >&2; exit 1; }
mv "$tmp" "$CACHE/$FILE"
echo "$CACHE"
