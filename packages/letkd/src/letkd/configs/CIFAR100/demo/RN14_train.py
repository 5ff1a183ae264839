"""Demo: train the digits teacher (CIFAR ResNet-14, cross-entropy) that `letkd.demo` then exports as a teacher file."""

from letkd.configs.demo_blocks import DEMO_EPOCHS, demo_data, student

config = {
    **demo_data(),
    "max_num_epochs": DEMO_EPOCHS,
    "networks": {"student_net": student(14)},
    "criterions": {"loss": {"ctype": "CrossEntropyLoss", "opt": None}},
    "algorithm_type": "classification",
}
