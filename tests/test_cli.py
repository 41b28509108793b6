"""The tinygrad-edu command line: commands work, bad arguments get a clear message and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tinygrad_edu.cli import main


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tinygrad_edu", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("command", ["demo", "train", "compare", "graph", "bench"])
def test_help_for_every_command(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "usage: tinygrad-edu " + command in capsys.readouterr().out


@pytest.mark.parametrize("command", ["demo", "train", "compare", "check", "graph", "bench"])
def test_every_command_says_what_it_does_under_its_usage(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    description = out.split("\n\n")[1]  # the paragraph between the usage and the arguments
    assert not description.startswith(("positional arguments", "options")) and len(description.split()) > 5, out
    for option in ("--no-progress",):
        if option in out:
            assert len(out.split(option)[-1].split("\n")[0].split()) > 3, f"{command} {option} has no help text"


def test_a_bare_command_prints_the_commands_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: tinygrad-edu") and all(c in out for c in ("demo", "train", "compare", "bench"))


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from tinygrad_edu import __version__

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"tinygrad-edu {__version__}"


def test_compare_prints_the_table_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "xor", "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "layers.0.weight <- weights1" in out and "agree: worst relative error" in out


@pytest.mark.parametrize("args, message", [
    (["train", "--sizes", "10,3"], "start with 784"),
    (["train", "--sizes", "784,x,10"], "comma-separated integers"),
    (["train", "--lr", "-1"], "must be positive"),
    (["train", "--epochs", "0"], "must be positive"),
    (["compare", "nope"], "invalid choice"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_exit_2_with_a_message(args: list[str], message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_train_on_a_small_subset_beats_chance(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--epochs", "1", "--limit", "3000", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == ("Training [784, 30, 10] on 3000 MNIST images for 1 epoch: mini-batch 10, sgd, "
                                   "lr 3, quadratic cost, init normal, seed 0, float64")  # the settings first
    assert "Epoch 0: " in out
    correct = int(out.split("Epoch 0: ")[1].split(" / ")[0])
    assert correct > 5000  # of 10000 test images; chance is 1000


def test_python_dash_m_runs_the_same_cli() -> None:
    result = run("compare", "xor", "--steps", "1")
    assert result.returncode == 0, result.stderr
    assert "agree" in result.stdout


def test_graph_refuses_an_unknown_picture_suffix(capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    assert main(["graph", "xor", "-o", str(tmp_path) + "/g.jpg"]) == 2
    assert ".svg, .png or .pdf" in capsys.readouterr().err


def test_train_net_conv_trains_nielsens_chapter_6_network(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--net", "conv", "--epochs", "1", "--limit", "200", "--no-progress", "--seed", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("Training Nielsen's chapter-6 network 'conv' on 200 MNIST images for 1 epoch: mini-batch 10, "
                      "sgd, lr 0.1, seed 1, float64")
    assert out[1].startswith("Epoch 0: validation accuracy ") and ", test accuracy " in out[1]
    assert out[-1].startswith("Best validation accuracy ")
    assert out[-1].endswith("(the book, after 60 epochs on 50,000 images: 98.78%)")


def test_train_net_conv_refuses_the_mlp_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--net", "conv2", "--sizes", "784,10", "--checkpoint", "run.npz"]) == 2
    err = capsys.readouterr().err
    assert "--sizes, --checkpoint set the MLP's training" in err and "Leave them out" in err
    assert main(["train", "--net", "conv", "--batchnorm"]) == 2
    assert "--batchnorm sets the MLP's training" in capsys.readouterr().err
