#!/usr/bin/env bash
# Fetch the real sample clips the quality benchmark uses (vtest.avi, tree.avi, Megamind.avi,
# starry_night.jpg) from Debian's opencv-doc package into .cache/samples. Tests never need them.
#   bash benchmarks/fetch_samples.sh
#   OPENCV_DOC_DEB=/path/opencv-doc_*.deb bash benchmarks/fetch_samples.sh   # a .deb you have
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.cache/samples
files="vtest.avi tree.avi Megamind.avi starry_night.jpg"

if [ -f "$dest/vtest.avi" ]; then
    echo "samples already in $dest"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
deb=${OPENCV_DOC_DEB:-}
if [ -z "$deb" ]; then
    (cd "$tmp" && apt-get download opencv-doc)
    deb=$(ls "$tmp"/opencv-doc_*.deb)
fi
dpkg -x "$deb" "$tmp/x"
data="$tmp/x/usr/share/doc/opencv-doc/examples/data"
mkdir -p "$dest"
for name in $files; do
    if [ -f "$data/$name" ]; then
        cp "$data/$name" "$dest/$name"
    elif [ -f "$data/$name.gz" ]; then  # Debian compresses some documentation files
        gunzip -c "$data/$name.gz" > "$dest/$name"
    else
        echo "warning: $name is not in the package" >&2
    fi
done
ls -l "$dest"
