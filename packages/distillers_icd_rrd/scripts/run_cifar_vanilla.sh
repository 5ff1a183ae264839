#!/bin/sh
# Sample scripts for training vanilla teacher models (run from packages/distillers_icd_rrd).
# Note: a teacher lands in save/teacher/models/cifar100_<model>_trial_0/; rename that folder to <model>_vanilla
# before passing a checkpoint in it as --path_t (the arch is parsed from the folder name's first segment).

python train_teacher.py --model wrn_40_2
python train_teacher.py --model resnet56
python train_teacher.py --model resnet110
python train_teacher.py --model resnet32x4
python train_teacher.py --model vgg13
python train_teacher.py --model ResNet50
