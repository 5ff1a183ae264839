"""Networks of the original `model/` package (SuperRetina, LKUNET, the Swin student) with PKE and the record module.

Pick a network by name with `rkd_retina.model.registry.get_model_class`.
"""
