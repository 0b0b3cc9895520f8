"""The example scripts run against Geyser's Rust examples (CPU path here; the CUDA path runs on
the GPU machine: scripts/device/issue19.sh)."""

import pathlib
import subprocess
import sys

from conftest import binary, wait_for_endpoint

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def run(*args, timeout=120):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def python(*args):
    return [sys.executable, *args]


def test_consume_example_verifies_ipc_producer_frames(endpoint, spawn):
    spawn(binary("ipc_producer"), "--name", endpoint, "--size", "64x48", "--frames", 30, "--lossless", "--pattern", "solid")
    result = run(EXAMPLES / "consume.py", endpoint, "--lossless", "--verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "received 30 frames" in result.stdout and "0 bad" in result.stdout, result.stdout


def test_publish_example_feeds_ipc_consumer(endpoint, spawn):
    publisher = spawn(*python(EXAMPLES / "publish.py", endpoint, "--frames", 20, "--size", "96x64", "--lossless"))
    wait_for_endpoint(endpoint)
    consumer = spawn(binary("ipc_consumer"), "--name", endpoint, "--lossless", "--idle-timeout", 60)
    code, out = publisher.wait(timeout=120)
    assert code == 0, out
    code, out = consumer.wait(timeout=60)
    assert code == 0 and "20 frames" in out and "0 corrupted" in out, out


def test_stubs_name_what_the_module_has():
    import ast

    import geyser._native as native

    stub = ast.parse((pathlib.Path(native.__file__).parent / "_native.pyi").read_text())
    for node in stub.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            assert hasattr(native, node.name), node.name
        if isinstance(node, ast.ClassDef):
            cls = getattr(native, node.name)
            for member in node.body:
                if isinstance(member, ast.FunctionDef) and not member.name.startswith("__"):
                    assert hasattr(cls, member.name), f"{node.name}.{member.name}"
