"""YAML 1.2 booleans: only true/false; on/off/yes/no stay text (alerts: {on: [...]} works)."""

from __future__ import annotations

from myapp.yaml_io import load_yaml


def test_only_true_and_false_are_booleans() -> None:
    data = load_yaml("alerts: {on: [failed]}\na: yes\nb: off\nc: NO\nd: true\ne: False\n")
    assert data == {"alerts": {"on": ["failed"]}, "a": "yes", "b": "off", "c": "NO", "d": True, "e": False}
