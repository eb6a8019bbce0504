"""The synthetic xLAM-style generator behind the bundled sample and `funreason sample`.

`tools` holds the building blocks (parameters, value samplers, how a request says a value),
`catalog` the tool tables as plain data, `kinds` the row kinds built from them.
"""

from funreason.data.synth.catalog import TOOLS
from funreason.data.synth.kinds import KINDS, generate, instantiate, kinds_help, write_sample

__all__ = ["KINDS", "TOOLS", "generate", "instantiate", "kinds_help", "write_sample"]
