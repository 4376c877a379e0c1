"""What a run's compositional augmentation adds (issue 18): of the objects in the synthesized Shapes scenes, the
share of each shape and of the held-out color+shape pairs, for an experiment config with overrides. Shows what
`data.gan_augment.filter_with` takes out.

    python bench/augment_mix.py --config configs/gan/exp_compositional.yaml data.gan_augment.frequency=natural \
        --vs data.gan_augment.filter_with=runs/shapes-reasoning-3600-s0/model
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

from gan.scene_augment import synthetic_scenes
from vl.config import load_config
from vl.experiment import ExperimentConfig


def mix(cfg: ExperimentConfig) -> dict[str, float]:
    rows = synthetic_scenes(cfg.data.shapes, cfg.data.gan_augment)
    objects = [o for scene in rows["scene"] for o in scene["objects"]]
    held = set(cfg.data.shapes.heldout_pairs)
    shapes = Counter(o["shape"] for o in objects)
    pairs = Counter(f"{o['color']} {o['shape']}" for o in objects if f"{o['color']} {o['shape']}" in held)
    out = {"scenes": len(rows), "objects": len(objects), "held_out_pair_share": sum(pairs.values()) / len(objects)}
    out |= {f"pair/{p}": pairs[p] / len(objects) for p in sorted(held)}
    return out | {f"shape/{s}": shapes[s] / len(objects) for s in sorted(shapes)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True)
    p.add_argument("overrides", nargs="*", help="key=value for both arms")
    p.add_argument("--vs", nargs="*", default=[], help="key=value of the second arm, on top of the overrides")
    args = p.parse_args()
    base = mix(load_config(ExperimentConfig, args.config, args.overrides))
    other = mix(load_config(ExperimentConfig, args.config, [*args.overrides, *args.vs]))
    print(f"| added objects | {' '.join(args.overrides)} | + {' '.join(args.vs)} |\n|---|---:|---:|")
    for key in base:
        fmt = "{:.0f}" if key in ("scenes", "objects") else "{:.3f}"
        print(f"| {key} | {fmt.format(base[key])} | {fmt.format(other.get(key, 0))} |")
    print(json.dumps({"base": base, "vs": other}))


if __name__ == "__main__":
    main()
