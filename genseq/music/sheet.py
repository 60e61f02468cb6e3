"""ABC tunes -> sheet music: MusicXML written by music21, engraved to SVG by verovio.

The path is ABC -> music21 -> MusicXML -> verovio rather than verovio's own ABC importer,
measured on 100 corpus tunes (``benchmarks/sheet_music.py``, BENCHMARKS.md): the importer is
several times faster but draws no first and second endings, stretches a triplet over the
notes beamed after it (genseq writes a bar's notes without spaces), ignores a ``K:`` change,
and on some real tunes aborts the whole process (``std::out_of_range``), which no ``try`` can
catch. The MusicXML route engraves more tunes right, and ``--musicxml`` needs music21's
reading anyway, so one parse serves both files.

An SVG is one tall page (``adjustPageHeight``): verovio would otherwise paginate to A4, and a
tune longer than its largest page is stacked page under page into the one file. The page is
A4 wide at 40 % (840 px), so that a browser shows a tune at about the size of printed music,
four to six bars of a reel to a line, with no sideways scrolling. music21 and verovio are imported
inside the functions, so importing genseq stays fast.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from genseq.fileio import atomic_write_text

PAGE_WIDTH = 2100  # verovio units (tenths of a millimetre at scale 100): A4 portrait
SCALE = 40  # percent: the 2100-unit page is 840 px wide
TALLEST_PAGE = 60_000  # verovio's largest page height: about 200 systems, 800 bars
VEROVIO_OPTIONS = {
    "pageWidth": PAGE_WIDTH,
    "pageHeight": TALLEST_PAGE,
    "scale": SCALE,
    "adjustPageHeight": True,  # the page ends under the last system
    "footer": "none",
    "breaks": "auto",
}


class EngraveError(ValueError):
    """A tune music21 or verovio cannot turn into notation; the message is a short reason."""


@dataclass(frozen=True)
class Sheet:
    """One tune as MusicXML, and engraved from it as SVG on request."""

    musicxml: str
    dropped: str = ""  # what had to be left out for music21 to read the tune ("": nothing)

    def svg(self) -> str:
        """The tune engraved as one SVG document (pages stacked when there are several)."""
        toolkit = _toolkit()
        toolkit.setOptions(VEROVIO_OPTIONS)
        if not toolkit.loadData(self.musicxml):
            raise EngraveError("verovio cannot read music21's MusicXML")
        pages = [toolkit.renderToSVG(n) for n in range(1, toolkit.getPageCount() + 1)]
        if not pages:
            raise EngraveError("verovio engraved no page")
        return stack_pages(pages)


def sheet(abc: str) -> Sheet:
    """The tune (one tunebook entry, X: to its last line) read by music21 as MusicXML. A tune
    music21 cannot read for a chord symbol it does not know (``" "``, ``"Am/c#"``...) is read
    again without its chord symbols, and says so in ``dropped``."""
    try:
        return Sheet(_musicxml(abc))
    except EngraveError:
        plain = without_chord_symbols(abc)
        if plain == abc:
            raise
    return Sheet(_musicxml(plain), dropped="its chord symbols")


def _musicxml(abc: str) -> str:
    import warnings

    import music21
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # music21 warns on odd input; the result counts
            score = music21.converter.parse(abc, format="abc")
            data = GeneralObjectExporter(score).parse()
    except Exception as exc:  # music21 raises many kinds on tunes it cannot read
        raise EngraveError(f"music21 cannot read it ({type(exc).__name__})") from None
    if not score.flatten().notes:
        raise EngraveError("music21 reads no notes in it")
    return data.decode("utf-8")


_QUOTED = re.compile(r'"[^"\n]*"')


def without_chord_symbols(abc: str) -> str:
    """The tune with every quoted string (chord symbols, annotations) after its first ``K:``
    line removed; the header is kept as it is."""
    head, sep, body = abc.partition("\nK:")
    if not sep:
        return abc
    key_line, newline, music = body.partition("\n")
    return head + sep + key_line + newline + _QUOTED.sub("", music)


@functools.cache
def _toolkit():
    """One verovio toolkit per process (about 15 ms to make), silent on stderr."""
    import verovio

    verovio.enableLog(verovio.LOG_OFF)
    toolkit = verovio.toolkit()
    toolkit.setInputFrom("musicxml")
    return toolkit


_SIZE = re.compile(r'<svg\b[^>]*?\bwidth="([\d.]+)px"[^>]*?\bheight="([\d.]+)px"')


def stack_pages(pages: list[str]) -> str:
    """Verovio's pages as one SVG: each page an inner ``<svg>`` placed under the one before."""
    if len(pages) == 1:
        return pages[0]
    sizes = []
    for page in pages:
        m = _SIZE.search(page)
        if m is None:
            raise EngraveError("verovio's page has no size")
        sizes.append((float(m.group(1)), float(m.group(2))))
    width = max(w for w, _ in sizes)
    inner, y = [], 0.0
    for page, (_, height) in zip(pages, sizes, strict=True):
        body = re.sub(r"^\s*<\?xml[^>]*\?>\s*", "", page)
        inner.append(body.replace("<svg", f'<svg y="{y:g}"', 1))
        y += height
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'version="1.1" width="{width:g}px" height="{y:g}px">\n' + "\n".join(inner) + "\n</svg>\n"
    )


def write_svg(sheet_: Sheet, path: Path | str) -> Path:
    """Write the engraved tune (atomically); returns its path."""
    path = Path(path)
    atomic_write_text(path, sheet_.svg())
    return path


def write_musicxml(sheet_: Sheet, path: Path | str) -> Path:
    """Write the tune as uncompressed MusicXML (atomically); returns its path."""
    path = Path(path)
    atomic_write_text(path, sheet_.musicxml)
    return path
