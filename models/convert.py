#!/usr/bin/env python3
"""Builds models/msd_musicnn*.onnx from the pre-trained MSD_musicnn checkpoint of PyPI musicnn 0.1.0.

Run by hand, never in CI (TensorFlow is a 500 MB install). From the repository root:

    python3.11 -m venv /work/venv-musicnn          # outside the repository
    /work/venv-musicnn/bin/pip install tensorflow-cpu==2.15.1 tf2onnx==1.17.0 onnx==1.16.2 \
        onnxruntime librosa soundfile
    /work/venv-musicnn/bin/pip install --no-deps musicnn==0.1.0   # its pins (numpy<1.17) are stale
    /work/venv-musicnn/bin/python models/convert.py

(onnx newer than 1.16 conflicts with TF 2.15's protobuf.) The script:
1. builds the MSD_musicnn graph with the package's own `musicnn.models.define_model`, in
   inference mode (batch norm on its moving statistics, no dropout), input
   `model/melspectrogram:0` [N, 187, 96];
2. restores the package's checkpoint (the folder path is the checkpoint prefix), freezes it;
3. converts it with tf2onnx (opset 17) to `msd_musicnn_f32.onnx` with three outputs:
   `model/tags:0` [N, 50] (sigmoid tag probabilities), `model/dense/BiasAdd:0` [N, 200] (the
   penultimate dense layer before its ReLU: the embedding playlista stores, the tensor Essentia
   calls the MusiCNN embedding) and `model/penultimate:0` [N, 200] (what musicnn's own extractor
   returns as "penultimate": the same layer after ReLU and batch norm);
4. checks ONNX against TensorFlow on the fixture patches and random ones;
5. writes `msd_musicnn_int8.onnx`: every Conv and MatMul weight stored as int8 with one scale per
   output channel (symmetric, zero point 0) behind a DequantizeLinear node, so the runtime folds
   it back to float once at load and runs float kernels;
6. writes the fixture outputs (`fixture/outputs_*.bin`) of the float TensorFlow graph and of both
   ONNX models for the fixture patches made by `make_fixture.py`, and prints the accuracy of the
   int8 model against float and the sha256 of each file (copied by hand into MODEL.md).
"""

import hashlib
import json
import os
import sys
import warnings

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore", category=UserWarning)  # tf.compat.v1.layers deprecations
import tensorflow as tf  # noqa: E402

tf.compat.v1.disable_eager_execution()

import musicnn  # noqa: E402
from musicnn import configuration as config  # noqa: E402
from musicnn import models as musicnn_models  # noqa: E402
import onnx  # noqa: E402
from onnx import helper, numpy_helper, TensorProto  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixture")
N_FRAMES = 187
INPUT = "model/melspectrogram:0"
OUTPUTS = ["model/tags:0", "model/dense/BiasAdd:0", "model/penultimate:0"]
OPSET = 17


def build_frozen_graph():
    """The MSD_musicnn graph in inference mode with the checkpoint's weights as constants."""
    graph = tf.Graph()
    with graph.as_default():
        with tf.name_scope("model"):
            x = tf.compat.v1.placeholder(tf.float32, [None, N_FRAMES, config.N_MELS], name="melspectrogram")
            # A Python False (not musicnn's bool placeholder) bakes inference mode into the graph:
            # no Switch/Merge for batch norm or dropout, which tf2onnx would otherwise carry along.
            outs = musicnn_models.define_model(x, False, "MSD_musicnn", len(config.MSD_LABELS))
            logits, penultimate = outs[0], outs[-1]
            tf.identity(tf.nn.sigmoid(logits), name="tags")
            tf.identity(penultimate, name="penultimate")
        sess = tf.compat.v1.Session(graph=graph)
        saver = tf.compat.v1.train.Saver()
        saver.restore(sess, os.path.join(os.path.dirname(musicnn.__file__), "MSD_musicnn") + "/")
        frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
            sess, graph.as_graph_def(), [o.split(":")[0] for o in OUTPUTS]
        )
    return sess, frozen


def run_tf(sess, patches):
    outs = [sess.graph.get_tensor_by_name(o) for o in OUTPUTS]
    return sess.run(outs, feed_dict={sess.graph.get_tensor_by_name(INPUT): patches})


def to_onnx(frozen, path):
    import tf2onnx

    model, _ = tf2onnx.convert.from_graph_def(
        frozen, input_names=[INPUT], output_names=OUTPUTS, opset=OPSET
    )
    model.producer_name = "playlista models/convert.py (tf2onnx)"
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return model


def quantize_weights(model):
    """Weight-only int8: Conv/MatMul weights become int8 + per-output-channel scales."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    # Which input of which op is a weight, and which axis of it holds the output channels.
    targets = {}
    for node in graph.node:
        if node.op_type == "Conv" and node.input[1] in inits:
            targets[node.input[1]] = 0  # OIHW
        elif node.op_type == "MatMul" and node.input[1] in inits:
            targets[node.input[1]] = 1  # [K, N]
        elif node.op_type == "Gemm" and node.input[1] in inits:
            trans_b = any(a.name == "transB" and a.i == 1 for a in node.attribute)
            targets[node.input[1]] = 0 if trans_b else 1
    new_nodes = []
    for name, axis in targets.items():
        w = numpy_helper.to_array(inits[name]).astype(np.float32)
        other = tuple(a for a in range(w.ndim) if a != axis)
        amax = np.max(np.abs(w), axis=other)
        scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
        shape = [1] * w.ndim
        shape[axis] = -1
        q = np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8)
        graph.initializer.remove(inits[name])
        graph.initializer.extend([
            numpy_helper.from_array(q, name + "_int8"),
            numpy_helper.from_array(scale, name + "_scale"),
            numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), name + "_zero"),
        ])
        new_nodes.append(helper.make_node(
            "DequantizeLinear", [name + "_int8", name + "_scale", name + "_zero"], [name],
            name=name + "_dequantize", axis=axis,
        ))
    # Dequantize nodes first: the graph stays topologically sorted.
    nodes = new_nodes + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return model, len(targets)


def run_onnx(path, patches):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    # The file's own semantics: optimised onnxruntime fuses the int8 MatMul into an integer
    # kernel that quantises its input too (tags move by 6e-4), which tract does not do.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    return sess.run(OUTPUTS, {INPUT: patches})


def cosine(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def write_f32(path, array):
    np.ascontiguousarray(array, dtype="<f4").tofile(path)


def main():
    patches_path = os.path.join(FIXTURE, "mel_patches.bin")
    if not os.path.exists(patches_path):
        sys.exit("run models/make_fixture.py first: it writes fixture/mel_patches.bin")
    fixture = np.fromfile(patches_path, dtype="<f4").reshape(-1, N_FRAMES, config.N_MELS)
    rng = np.random.default_rng(7)
    random = rng.uniform(0.0, 3.0, size=(4, N_FRAMES, config.N_MELS)).astype(np.float32)

    sess, frozen = build_frozen_graph()
    f32_path = os.path.join(HERE, "msd_musicnn_f32.onnx")
    int8_path = os.path.join(HERE, "msd_musicnn_int8.onnx")
    model = to_onnx(frozen, f32_path)
    qmodel, count = quantize_weights(model)
    onnx.save(qmodel, int8_path)

    report = {"quantized_weights": count}
    for label, batch in (("fixture", fixture), ("random", random)):
        ref = run_tf(sess, batch)
        f32 = run_onnx(f32_path, batch)
        int8 = run_onnx(int8_path, batch)
        for name, r, a, b in zip(OUTPUTS, ref, f32, int8):
            report[f"{label} {name}"] = {
                "onnx_f32_max_abs_diff": float(np.max(np.abs(r - a))),
                "int8_min_cosine": min(cosine(r[i], b[i]) for i in range(len(r))),
                "int8_max_abs_diff": float(np.max(np.abs(r - b))),
            }
        if label == "fixture":
            for name, r in zip(("tags", "embedding", "penultimate"), ref):
                write_f32(os.path.join(FIXTURE, f"outputs_tf_{name}.bin"), r)
            for name, b in zip(("tags", "embedding", "penultimate"), int8):
                write_f32(os.path.join(FIXTURE, f"outputs_int8_{name}.bin"), b)
    for path in (f32_path, int8_path):
        report[os.path.basename(path)] = {"bytes": os.path.getsize(path), "sha256": sha256(path)}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
