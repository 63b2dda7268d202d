"""Episode replay: batches, FIFO buffer, MAST's dual buffer and RLx2's shrinking buffer."""

from mast.replay.episodes import Episode, EpisodeBatch, collate
from mast.replay.buffers import make_buffer

__all__ = ["Episode", "EpisodeBatch", "collate", "make_buffer"]
