"""README.rst's literal blocks (``::`` then an indented block), and the shell commands
in them, so that tests run the README's own text."""

from __future__ import annotations

import textwrap
from pathlib import Path


def literal_blocks(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    blocks, index = [], 0
    while index < len(lines):
        if not lines[index].rstrip().endswith("::"):
            index += 1
            continue
        indent = len(lines[index]) - len(lines[index].lstrip())
        index += 1
        block = []
        while index < len(lines) and (
            not lines[index].strip() or len(lines[index]) - len(lines[index].lstrip()) > indent
        ):
            block.append(lines[index])
            index += 1
        text = textwrap.dedent("\n".join(block)).strip("\n")
        if text:
            blocks.append(text + "\n")
    return blocks


def shell_commands(block: str) -> list[str]:
    """The commands of a shell block: continued lines joined, comments left out."""
    commands, current = [], ""
    for line in block.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip().removesuffix("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            commands.append(current.split("  #")[0].strip())
            current = ""
    return commands


def blocks_starting_with(path: Path, word: str) -> list[str]:
    """The literal blocks whose first command starts with ``word``."""
    found = []
    for block in literal_blocks(path):
        commands = shell_commands(block)
        if commands and commands[0].split()[0] == word:
            found.append(block)
    return found
