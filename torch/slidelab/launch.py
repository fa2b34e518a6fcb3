"""`torchrun`, for hosts where torchrun itself fails: PyTorch 1.13 on Python 3.11 (Debian 12's
python3-torch) stops with "AttributeError: 'NoneType' object has no attribute 'get'" because
Python 3.11 no longer lists the zero IntFlag member torchrun's --redirects/--tee parser looks for.
This module mends that parser and then runs torchrun unchanged:

    python3 -m slidelab.launch --nproc_per_node 3 -m slidelab.train <run dir> --out <dir>

is `torchrun --nproc_per_node 3 -m slidelab.train <run dir> --out <dir>`. On PyTorch >= 2.0 plain
torchrun works.
"""
from __future__ import annotations

import re
import sys


def _mend_std_parser() -> None:
    from torch.distributed.elastic.multiprocessing import api

    std = api.Std
    try:
        if isinstance(std.from_str("0"), std):
            return  # this PyTorch parses it already
    except Exception:
        pass

    def from_str(cls, vm: str):
        if re.match(api._VALUE_REGEX, vm):
            return cls(int(vm))
        if re.match(api._MAPPING_REGEX, vm):
            return {int(i): cls(int(v)) for i, v in (m.split(":") for m in vm.split(","))}
        raise ValueError(f"{vm} does not match: <{api._VALUE_REGEX}> or <{api._MAPPING_REGEX}>")

    std.from_str = classmethod(from_str)


def main() -> None:
    _mend_std_parser()
    from torch.distributed.run import main as torchrun

    torchrun(sys.argv[1:])


if __name__ == "__main__":
    main()
