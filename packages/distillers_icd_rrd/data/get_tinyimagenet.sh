#!/bin/bash
# Download TinyImageNet-200 into ./tiny-imagenet-200 and reorganise train/ and val/ into ImageFolder layout.
# Deviation: the seed's PBS header and `cd $PBS_O_WORKDIR` (which outside PBS went to $HOME) are replaced by a cd
# into this script's folder, so `sh data/get_tinyimagenet.sh` fills ./data/tiny-imagenet-200 where the loaders look.
set -e
cd "$(dirname "$0")"

wget http://cs231n.stanford.edu/tiny-imagenet-200.zip
unzip -q tiny-imagenet-200.zip
current="$(pwd)/tiny-imagenet-200"

# training data: train/<wnid>/images/*.JPEG -> train/<wnid>/*.JPEG, box files removed
cd "$current/train"
for dir in */; do
    rm -f "$dir"*.txt
    mv "$dir"images/* "$dir"
    rmdir "$dir"images
done

# validation data: val/images/<file> -> val/<wnid>/<file>, from columns 1-2 of val_annotations.txt
cd "$current/val"
while read -r file wnid _; do
    mkdir -p "$wnid"
    mv "images/$file" "$wnid/"
done < val_annotations.txt
rm -r images
echo "done"
