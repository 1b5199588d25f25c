"""``plastax data``: turn recordings into spike data sets and inspect spike files.

    plastax data encode --source DIR --out FILE.h5 [--channels 64] [--scale erb] ...
    plastax data info FILE.h5

``encode`` runs the cochlea-like encoder (:class:`plastax.tasks.audio.CochleaEncoder`)
on every WAV file of a folder whose name matches ``--pattern`` and writes the spike
trains in the file layout of the Spiking Heidelberg Digits, which the SHD loader reads
(:func:`plastax.tasks.shd.load_spike_file`).  ``info`` summarises such a file.  Both
print one JSON object as the last line on stdout; the progress bar goes to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

__all__ = ["add_data", "cmd_data"]


def _option(parser, flag: str, help: str, **kwargs) -> None:
    parser.add_argument(flag, help=f"{help} (default: %(default)s)", **kwargs)


def _float_list(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as 3,6, received {text!r}"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number, received none")
    return values


def add_data(subparsers) -> argparse.ArgumentParser:
    from .tasks.audio import COMPRESSIONS, FSDD_PATTERN, SCALES, CochleaEncoder

    d = {f.name: f.default for f in dataclasses.fields(CochleaEncoder)}
    p = subparsers.add_parser(
        "data",
        help="encode recordings into spike data sets (SHD layout) and inspect them",
        description="Spike data sets in the file layout of the Spiking Heidelberg Digits.",
    )
    sub = p.add_subparsers(dest="data", metavar="ACTION", title="actions")
    e = sub.add_parser(
        "encode",
        help="encode a folder of WAV files into spike trains (SHD layout)",
        description=(
            "Encode every WAV file in --source whose name matches --pattern with a "
            "cochlea-like encoder (gammatone filterbank on an ERB or mel scale, half-wave "
            "rectification, envelope, compression, one leaky integrate-and-fire unit per "
            "channel) and write the spike trains to --out in the file layout of the "
            "Spiking Heidelberg Digits.  Files must be mono integer PCM of --sample-rate "
            "and --bit-depth.  A README next to the recordings is stored in the file; add "
            "the source's licence and attribution with --licence and --attribution."
        ),
    )
    e.add_argument("--source", required=True, metavar="DIR", help="folder of WAV files")
    e.add_argument("--out", required=True, metavar="FILE.h5", help="output file (HDF5)")
    _option(e, "--channels", "frequency channels", type=int, default=d["n_channels"])
    _option(e, "--scale", f"centre-frequency spacing: {', '.join(SCALES)}", default=d["scale"])
    _option(e, "--f-min", "lowest centre frequency (Hz)", type=float, default=d["f_min"])
    _option(e, "--f-max", "highest centre frequency (Hz)", type=float, default=d["f_max"])
    _option(
        e,
        "--sample-rate",
        "sample rate the files must have (Hz)",
        type=int,
        default=d["sample_rate"],
    )
    _option(
        e,
        "--bit-depth",
        "integer PCM bit depth the files must have",
        type=int,
        default=d["bit_depth"],
    )
    _option(
        e,
        "--max-gain-db",
        "largest gain of the peak normalisation (dB)",
        type=float,
        default=d["max_gain_db"],
    )
    _option(e, "--compression", f"one of: {', '.join(COMPRESSIONS)}", default=d["compression"])
    _option(
        e,
        "--dynamic-range-db",
        "log compression: levels this far below full scale give no drive (dB)",
        type=float,
        default=d["dynamic_range_db"],
    )
    _option(e, "--exponent", "power compression: exponent", type=float, default=d["exponent"])
    _option(e, "--dt", "spike-time resolution (s)", type=float, default=d["dt"])
    _option(e, "--tau", "time constant of the spike generators (s)", type=float, default=d["tau"])
    _option(
        e,
        "--gains",
        "comma-separated gains, one spike generator per channel and gain (drive at full "
        "scale in units of the threshold); units = channels x gains",
        type=_float_list,
        default=",".join(f"{g:g}" for g in d["gains"]),
    )
    _option(
        e,
        "--pattern",
        "regular expression for the file names, with a named group "
        "'label' and optionally 'speaker' (FSDD's names by default)",
        default=FSDD_PATTERN,
    )
    e.add_argument("--licence", default=None, help="licence of the source, stored in the file")
    e.add_argument(
        "--attribution", default=None, help="attribution of the source, stored in the file"
    )
    e.add_argument(
        "--no-progress",
        action="store_true",
        help="hide the progress bar (default: shown on stderr)",
    )
    e.set_defaults(data_run=cmd_data_encode)

    i = sub.add_parser(
        "info",
        help="summarise a spike file in the SHD layout",
        description="Print the samples, channels, spikes, classes, speakers and "
        "attributes (licence, attribution, encoder) of a spike file in the SHD layout.",
    )
    i.add_argument("file", metavar="FILE.h5", help="spike file")
    i.set_defaults(data_run=cmd_data_info)
    return p


def cmd_data(args: argparse.Namespace) -> int:
    run = getattr(args, "data_run", None)
    if run is None:
        raise ValueError(
            "data: expected an action (encode, info), received none; see plastax data --help"
        )
    return run(args)


def cmd_data_encode(args: argparse.Namespace) -> int:
    from .tasks.audio import CochleaEncoder, encode_folder

    encoder = CochleaEncoder(
        n_channels=args.channels,
        f_min=args.f_min,
        f_max=args.f_max,
        scale=args.scale,
        sample_rate=args.sample_rate,
        bit_depth=args.bit_depth,
        max_gain_db=args.max_gain_db,
        compression=args.compression,
        dynamic_range_db=args.dynamic_range_db,
        exponent=args.exponent,
        dt=args.dt,
        tau=args.tau,
        gains=args.gains,
    )
    attrs = {}
    if args.licence:
        attrs["licence"] = args.licence
    if args.attribution:
        attrs["attribution"] = args.attribution
    summary = encode_folder(
        args.source,
        args.out,
        encoder,
        pattern=args.pattern,
        attrs=attrs,
        progress=not args.no_progress,
    )
    print(json.dumps(summary), flush=True)
    return 0


def cmd_data_info(args: argparse.Namespace) -> int:
    import numpy as np

    from .tasks.shd import read_spike_file

    raw = read_spike_file(args.file)
    counts = np.array([len(t) for t in raw["times"]])
    ends = [float(np.max(t[np.isfinite(t)])) for t in raw["times"] if np.isfinite(t).any()]
    units = [u for u in raw["units"] if u.size]
    labels, per_label = np.unique(raw["labels"], return_counts=True)
    summary = {
        "path": args.file,
        "n_samples": int(len(raw["labels"])),
        "n_channels": int(
            raw["attrs"].get("n_channels", max((int(u.max()) for u in units), default=-1) + 1)
        ),
        "n_spikes": int(counts.sum()),
        "spikes_per_sample": float(counts.mean()) if counts.size else 0.0,
        "last_spike_max": max(ends, default=0.0),
        "samples_per_label": {int(k): int(v) for k, v in zip(labels, per_label, strict=True)},
        "keys": list(raw["keys"]),
        "speakers": list(raw["speaker_names"])
        or (sorted({int(s) for s in raw["speaker"]}) if raw["speaker"] is not None else []),
        "attrs": {k: v for k, v in raw["attrs"].items() if k != "source_readme"},
    }
    print(json.dumps(summary), flush=True)
    return 0
