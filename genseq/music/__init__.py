"""Music: ABC tunes and MIDI notes on top of the shared tokenizer, trainer and sampler.

The data path reads straight through: ABC text -> ``abc_lexer`` tokens -> the ``abc``
tokenizer level -> token files -> the shared model -> ``abc_constraint`` (valid tunes while
sampling) -> ``abc_writer`` (a tunebook entry) and ``notes`` -> ``render`` (MIDI, WAV, PNG).
MIDI note models read straight through too: MIDI bytes (``midi_io``, through mido) or ABC tunes ->
``note_sources`` -> ``midi_encoding`` events -> the ``midi-*`` levels -> ``midi_constraint``
and ``midi_sampling`` -> ``render``.
"""
