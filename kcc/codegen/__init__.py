"""Code generation: the checked AST to a LibCST module (``kcc build``).

The generator builds trees, never strings of code. This package holds its parts:

- :mod:`kcc.codegen.names`: deterministic Python names for route blocks, defines,
  flags and temporaries, the mangling scheme for cfg names that are not identifiers, and
  the :class:`~kcc.codegen.names.NameTable` that keeps names unique per scope;
- :mod:`kcc.codegen.literals`: literals that evaluate to exactly the cfg value (any
  string, even with non-UTF-8 bytes) and the ``# file.cfg:N`` marker comments that
  ``kcc_runtime.debug`` maps tracebacks back with.

- :mod:`kcc.codegen.emit`: the :class:`~kcc.codegen.emit.CodeGenerator` itself (one
  emitter per AST class, following ``docs/generated-code.md``) and the build refusals
  (E0901, E0902).

The formatted text comes from :func:`kcc.format.format_module` (black, then ``compile()``);
the ``build`` stage of :mod:`kcc.pipeline` runs both.
"""

from __future__ import annotations

from kcc.codegen.literals import bytes_literal, marker_comment, string_literal
from kcc.codegen.names import NameTable, identifier, mangle, route_function_name

__all__ = [
    "NameTable",
    "bytes_literal",
    "identifier",
    "mangle",
    "marker_comment",
    "route_function_name",
    "string_literal",
]
