"""Episode replay: batches, FIFO buffer, MAST's dual buffer and RLx2's shrinking buffer."""

from mast.replay.buffers import make_buffer
from mast.replay.episodes import Episode, EpisodeBatch, collate

__all__ = ["Episode", "EpisodeBatch", "collate", "make_buffer"]
