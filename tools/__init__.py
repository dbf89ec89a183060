"""Developer tools run from a checkout (``python -m tools.NAME``): they regenerate the committed docs and are not
part of the installed package."""
