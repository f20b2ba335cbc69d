"""Search that treats British and American spellings alike (quantisation / quantization, optimise /
optimize, colour / color).

material's search (lunr) matches words as typed. After the build, every indexed section that uses one
spelling gets the other appended to its text, so both queries find the same pages.
"""

import json
import re
from pathlib import Path

# -ise/-ize and -isation/-ization words, with their endings; the stem must be 4+ letters ("size", "rise").
ISE_IZE = re.compile(r"(?<![a-z])([a-z]{4,})i([sz])(ations|ation|able|ers|er|es|ed|ing|e)(?![a-z])", re.I)
NOT_ISE = set(
    "exerc adv rev surpr expert comprom enterpr prom prem prec conc otherw disgu superv telev dev improv "
    "compr cru merchand advert franch".split()
)
OUR_OR = {"colour": "color", "behaviour": "behavior", "neighbour": "neighbor", "favour": "favor"}


def variants(text: str) -> set[str]:
    """The other spelling of every British/American token in `text`, lower case.

    Tokens are split as the index's separator splits them (whitespace and '-'), so a token such as
    `quantization_config` gets `quantisation_config`: material also matches a query as a prefix.
    """
    tokens = set(re.split(r"[\s\-]+", re.sub(r"<[^>]+>", " ", text).lower()))
    found = set()
    for token in tokens:
        swapped = ISE_IZE.sub(swap, token)
        for british, american in OUR_OR.items():
            swapped = (
                swapped.replace(british, american)
                if british in swapped
                else swapped.replace(american, british)
            )
        if swapped != token:
            found.add(swapped)
    return found - tokens


def swap(m: re.Match) -> str:
    stem, letter, ending = m.group(1), m.group(2), m.group(3)
    if stem.lower() in NOT_ISE or stem.lower().endswith("w"):  # -wise: depthwise, otherwise
        return m.group(0)
    return f"{stem}i{'z' if letter.lower() == 's' else 's'}{ending}"


def add_spelling_variants(index_file: Path) -> None:
    index = json.loads(index_file.read_text(encoding="utf-8"))
    for doc in index["docs"]:
        extra = variants(doc.get("title", "") + " " + doc.get("text", ""))
        if extra:
            doc["text"] = doc.get("text", "") + " " + " ".join(sorted(extra))
    index_file.write_text(json.dumps(index, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
