"""tui-tune: fine-tune language models from the terminal, over SSH, with runs that outlive it.

Importing this package (or tui_tune.config / tui_tune.cli) must stay cheap: no torch & co.
"""

__version__ = "0.1.0"
