"""tinygrad-edu check FILE.py: runs a learner's params, manual and loss, prints the report, exits 0, 1 or 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinygrad_edu.cli import main

LEARNER = '''
import numpy as np

X = np.array([[1.0, 2.0, -1.0, 0.5], [0.0, 1.0, 1.0, -2.0]])   # two features, four examples
Y = np.array([[1.0, 0.0, 1.0, 0.0]])
params = {"w": np.array([[0.3, -0.2]]), "b": np.array([[0.1]])}


def manual(p):
    m = X.shape[1]
    A = 1 / (1 + np.exp(-(p["w"] @ X + p["b"])))
    cost = -np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A)) / m
    dZ = (A - Y) / m * FACTOR
    return cost, {"dw": dZ @ X.T, "db": np.sum(dZ, axis=1, keepdims=True)}


def loss(t):
    A = (t["w"] @ X + t["b"]).sigmoid()
    return -(Y * A.log() + (1 - Y) * (1 - A).log()).sum() / X.shape[1]


if __name__ == "__main__":
    raise SystemExit("the check must not run the file as a script")
'''


def learner_file(tmp_path: Path, factor: float = 1.0, drop: str = "") -> str:
    text = LEARNER.replace("FACTOR", repr(factor))
    if drop:
        text = text.replace(f"def {drop}(", f"def not_{drop}(").replace(f"{drop} = ", f"not_{drop} = ")
    path = tmp_path / "my_backprop.py"
    path.write_text(text)
    return str(path)


def test_a_correct_file_prints_the_report_and_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", learner_file(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cost: yours") and "agree: worst relative error" in out
    assert [line.split()[0] for line in out.splitlines()[2:4]] == ["w", "b"]


def test_a_wrong_gradient_exits_1_with_the_diagnosis(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", learner_file(tmp_path, factor=4.0)]) == 1
    out = capsys.readouterr().out
    assert "DISAGREE" in out and "factor" in out and "4.00" in out


def test_the_tolerance_is_an_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", learner_file(tmp_path, factor=1.001), "--tolerance", "1e-2"]) == 0
    assert main(["check", learner_file(tmp_path, factor=1.001)]) == 1


@pytest.mark.parametrize("name", ["params", "manual", "loss"])
def test_a_file_without_one_of_the_names_exits_2(name: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", learner_file(tmp_path, drop=name)]) == 2
    err = capsys.readouterr().err
    assert f"does not define {name}." in err and "manual(params)" in err


def test_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "nope.py")]) == 2
    assert "no file" in capsys.readouterr().err


def test_a_gradient_under_a_wrong_key_exits_1_naming_it(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = learner_file(tmp_path)
    Path(path).write_text(Path(path).read_text().replace('"dw":', '"dW":'))
    assert main(["check", path]) == 1
    assert "'dW'" in capsys.readouterr().err


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["check", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: tinygrad-edu check" in out and "FILE.py" in out and "--tolerance" in out


@pytest.mark.parametrize(("top", "said"), [
    ("import sys\nsys.exit(0)", "called sys.exit(0) while loading at line"),
    ("raise SystemExit", "called sys.exit(None) while loading"),
    ("import no_such_module_here", "raised ModuleNotFoundError: No module named 'no_such_module_here' while loading"),
    ("x = undefined_name", "raised NameError"),
])
def test_a_file_that_exits_or_raises_while_loading_never_passes(top: str, said: str, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "my_backprop.py"
    path.write_text(LEARNER.replace("FACTOR", "1.0") + "\n" + top + "\n")
    assert main(["check", str(path)]) == 2
    captured = capsys.readouterr()
    assert said in captured.err and "if __name__" in captured.err and captured.out == ""


def test_a_file_that_defines_nothing_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.py"
    path.write_text("# nothing yet\n")
    assert main(["check", str(path)]) == 2
    assert "does not define params, manual, loss." in capsys.readouterr().err


@pytest.mark.parametrize(("change", "said"), [
    (('{"dw": dZ @ X.T', '{"dw": p["W3"]'), "your manual(params) raised KeyError: 'W3' (in my_backprop.py, line"),
    (("(t[\"w\"] @ X + t[\"b\"]).sigmoid()", "np.tanh(t[\"w\"] @ X + t[\"b\"])"),
     "your loss(t) called np.tanh on a Tensor (in my_backprop.py, line"),
    (('"db": np.sum(dZ, axis=1, keepdims=True)', '"db": "oops"'), "manual's 'db' is a str"),
])
def test_an_error_in_the_learners_code_is_given_context(change: tuple[str, str], said: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = learner_file(tmp_path)
    Path(path).write_text(Path(path).read_text().replace(*change))
    assert main(["check", path]) in (1, 2)
    err = capsys.readouterr().err
    assert said in err, err
    if "np.tanh" in said:
        assert "use t.tanh()" in err


def test_a_manual_that_calls_sys_exit_does_not_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = learner_file(tmp_path)
    Path(path).write_text(Path(path).read_text().replace("    m = X.shape[1]\n", "    import sys; sys.exit(0)\n", 1))
    assert main(["check", path]) == 2
    assert "your manual(params) called sys.exit(0)" in capsys.readouterr().err


def test_a_float32_file_agrees_under_its_dtypes_tolerance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = learner_file(tmp_path)
    float32 = ("X, Y = X.astype(np.float32), Y.astype(np.float32)\n"
               "params = {k: v.astype(np.float32) for k, v in params.items()}\n\n\ndef manual")
    Path(path).write_text(Path(path).read_text().replace("\n\ndef manual", float32, 1))
    assert main(["check", path]) == 0, capsys.readouterr()
    assert "tolerance 1e-04, float32's default" in capsys.readouterr().out
