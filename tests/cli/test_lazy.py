"""The command line imports only the command it runs: ``import mgcl.cli`` and ``mgcl --help``
stay light (no torch, scikit-learn, scipy.stats, pandas, matplotlib), and ``mgcl --help``
still lists every command with the help its module gives it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mgcl import cli

HEAVY = ("torch", "sklearn", "scipy.stats", "pandas", "matplotlib")


def heavy_modules_after(code: str) -> list[str]:
    """The HEAVY modules imported after running ``code`` in a fresh interpreter."""
    probe = f"import sys\n{code}\nprint('heavy:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    last = run.stdout.strip().splitlines()[-1]
    assert last.startswith("heavy:"), run.stdout[-2000:]
    return [m for m in last.removeprefix("heavy:").split(",") if m]


def test_import_and_help_do_not_import_the_heavy_libraries():
    help_run = "from mgcl.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    assert heavy_modules_after("import mgcl.cli") == []
    assert heavy_modules_after(help_run) == []
    # the probe sees one when it is there
    assert heavy_modules_after("sys.modules['matplotlib'] = sys") == ["matplotlib"]


def test_help_lists_every_command_with_its_modules_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    for name, (_, text) in cli.COMMANDS.items():
        assert f"{name} {' '.join(text.split())}" in out
    # each entry's help is the one its module registers
    for name, (_, text) in cli.COMMANDS.items():
        sub = cli.build_parser(name)._subparsers._group_actions[0]
        shown = {a.dest: a.help for a in sub._choices_actions}
        assert shown[name] == text, name
        assert sub.choices[name].get_default("func") is not None, name


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["demo", "--workdir", "x"], "demo"),
        (["-q", "fit", "--help"], "fit"),
        (["--verbose", "data", "list"], "data"),
        (["--help"], None),
        (["nonsense"], None),
        (["--", "demo"], None),
        ([], None),
    ],
)
def test_the_command_is_the_first_word(argv, command):
    assert cli.command_in(argv) == command


def test_a_command_gets_its_own_options_only(capsys):
    parser = cli.build_parser("info")
    choices = parser._subparsers._group_actions[0].choices
    assert any(a.dest == "model" for a in choices["info"]._actions)
    assert [a.dest for a in choices["demo"]._actions] == []  # listed, not loaded
    with pytest.raises(SystemExit):
        cli.main(["nonsense"])
    assert "invalid choice: 'nonsense'" in capsys.readouterr().err
