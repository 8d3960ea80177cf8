import pytest

from jaxpde import cli


@pytest.fixture
def refused(tmp_path, monkeypatch, capsys):
    """``refused(name, setting)``: ``jaxpde run NAME --set SETTING`` exits with 2 and a message
    naming the setting's key, before any work — the experiment's `run` is replaced by a failure,
    so a setting that has become valid fails the test at once instead of running the experiment."""

    def check(name: str, setting: str) -> None:
        module = cli.load(name)
        monkeypatch.setattr(module, "run", lambda config, out_dir: pytest.fail(f"{name} ran with {setting}: a valid config"))
        code = cli.main(["run", name, "--out", str(tmp_path / "x"), "--set", setting])
        message = capsys.readouterr().err
        assert code == 2, message
        key = setting.split("=")[0]
        assert f"`{key}`" in message or f"'{key}'" in message, message

    return check
