"""The OData ``$filter`` grammar (lark, LALR) and its parse tree.

Only the syntax lives here; ``filter.py`` gives the tree its meaning (properties, types, lambdas,
geography). Keywords are case-insensitive (PRIP clients send ``AND`` as often as ``and``).
"""

from __future__ import annotations

from functools import lru_cache

import lark

GRAMMAR = r"""
?start: or_expr

?or_expr: and_expr
        | or_expr _OR and_expr              -> or_
?and_expr: not_expr
         | and_expr _AND not_expr           -> and_
?not_expr: primary
         | _NOT not_expr                    -> not_
?primary: "(" or_expr ")"
        | comparison
        | in_list
        | call
        | member                            -> bare_member

comparison: operand COMPARISON operand
in_list: operand _IN "(" literal ("," literal)* ")"
// A function (contains(Name,'x'), OData.CSC.Intersects(area=...)) or a lambda (.../any(att:...)).
call: path "(" [argument ("," argument)*] ")"
argument: operand
        | QNAME "=" operand                 -> named_argument
        | QNAME ":" or_expr                 -> lambda_argument

?operand: member | literal
member: path
path: QNAME ("/" QNAME)*

literal: STRING                             -> string
       | DATETIME                           -> datetime
       | NUMBER                             -> number
       | TRUE                               -> true
       | FALSE                              -> false
       | NULL                               -> null
       | GEOGRAPHY                          -> geography
       | QNAME STRING                       -> enum

_OR.2: /or\b/i
_AND.2: /and\b/i
_NOT.2: /not\b/i
_IN.2: /in\b/i
COMPARISON.2: /(eq|ne|lt|le|gt|ge)\b/i
TRUE.2: /true\b/i
FALSE.2: /false\b/i
NULL.2: /null\b/i
GEOGRAPHY.3: /(geography|geometry)'[^']*'/i
DATETIME.3: /\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?/
NUMBER: /[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/
STRING: /'([^']|'')*'/
QNAME: /[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*/

%ignore /\s+/
"""


@lru_cache(maxsize=2)
def parser(positions: bool = True) -> lark.Lark:
    # LALR: linear time on any input (fuzzed filters included), and built once per process, at first use.
    # cache=True: lark keeps the analysed grammar in the temporary directory, keyed by the grammar, the options
    # and its version, so a process after the first loads it (5 ms) instead of building it (40-90 ms).
    return lark.Lark(
        GRAMMAR, parser="lalr", lexer="contextual", propagate_positions=positions, maybe_placeholders=False, cache=True
    )


def parse(text: str, *, positions: bool = True) -> lark.Tree:
    """The parse tree of a ``$filter``; lark.exceptions.UnexpectedInput on a syntax error (which says where
    in either case). Without ``positions`` the tree's nodes do not know where they are, and it is 40% faster."""
    return parser(positions).parse(text)
