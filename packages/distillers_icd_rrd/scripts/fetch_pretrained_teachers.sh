#!/bin/sh
# Fetch RepDistiller's pre-trained CIFAR-100 teachers into save/models/<name>_vanilla/ckpt_epoch_240.pth.
# The seed used wget on shape2prog.csail.mit.edu; the registry keeps that link and its mirrors (and fails offline
# with a one-line instruction saying where to place the file by hand). Run from packages/distillers_icd_rrd.
set -e
for name in wrn_40_2 resnet56 resnet110 resnet32x4 vgg13 ResNet50; do
    python -m kdrepro_shared.checkpoints fetch "repdistiller/${name}_vanilla" --dest-dir "save/models/${name}_vanilla"
done
