"""onnxplain: black-box explanations for ONNX image and tabular classifiers, over a C++ core.

    import onnxplain as ox
    model = ox.Model("model.onnx", preset="imagenet")
    image = ox.load_image("cat.jpg", model.input_size)
    result = ox.RISE(model).attribute(image, target="top")
"""
from . import counterfactual, evaluation, fidelity, registry, tables, tabular
from .causal import Causal, CausalExplanation, SufficientSet
from .counterfactual import Pair, discriminative_map, make_pair, mask_swap
from .errors import OnnxplainError, OnnxplainWarning
from .evaluation import evaluate, register_method
from .explainer import Explainer
from .fidelity import RandomMap
from .image import load_image
from .information import IG, PMI, GaussianSampler, LearnedSampler, OnnxSampler, PatchSampler, information_maps
from .model import DEFAULT_BATCH_SIZE, Model, softmax
from .preprocess import PRESETS, Preprocess
from .reference import RISE, Occlusion
from .registry import MethodSpec, get_method, method_names
from .result import Explanation

__version__ = "0.1.0"
__all__ = ["DEFAULT_BATCH_SIZE", "Explainer", "Explanation", "Model", "Occlusion", "OnnxplainError", "OnnxplainWarning",
           "PRESETS", "Preprocess", "RISE", "load_image", "softmax",
           "counterfactual", "Pair", "make_pair", "discriminative_map", "mask_swap",
           "fidelity", "evaluation", "evaluate", "register_method", "RandomMap",
           "registry", "MethodSpec", "get_method", "method_names",
           "IG", "PMI", "GaussianSampler", "LearnedSampler", "OnnxSampler", "PatchSampler", "information_maps",
           "Causal", "CausalExplanation", "SufficientSet", "tables", "tabular"]
