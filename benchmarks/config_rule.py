"""Print a config's rule as one override value: ``brainprop``, or a YAML flow map such as
``{name: brainprop, epsilon: 1.0, temperature: 0.1}`` when the config sets options.

    python benchmarks/config_rule.py configs/mnist_dense.yaml

benchmarks/mnist_table1.sh puts it beside ``ebp`` in its ``--grid rule=...``, so that the
BrainProp runs keep the config's own rule options (a bare ``rule=brainprop`` would
replace them with the rule's defaults).
"""

from __future__ import annotations

import sys

import yaml

from neuroprop.config import load_config


def rule_value(rule: str | dict) -> str:
    if isinstance(rule, str):
        return rule
    return yaml.safe_dump(rule, default_flow_style=True, sort_keys=False, width=10**6).strip()


if __name__ == "__main__":
    print(rule_value(load_config(sys.argv[1]).rule))
