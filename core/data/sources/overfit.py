"""A generated set an MLP overfits within a few epochs: validation loss turns up early."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from core.codegen import Piece, ScriptContext, code
from core.config import DataConfig
from core.data.contract import GENERATOR_SEED, Dataset, DatasetInfo, DatasetSpec, Setting, Uploads
from core.data.split import DATA_TUPLE, SCALED_PREP, SPLIT, split_and_scale

SIZE = 400  # samples when data.max_samples is not set (it sets the generated size)
FEATURES = 60


@dataclass(frozen=True)
class Overfit(DatasetSpec):
    def describe(self, cfg: DataConfig, uploads_dir: Uploads) -> DatasetInfo:
        del uploads_dir
        return DatasetInfo(
            self.task, self.input_kind, 2, cfg.max_samples or SIZE, input_shape=self.fixed_shape
        )

    def load(self, cfg: DataConfig, *, validation_split: float, seed: int, uploads_dir: Uploads) -> Dataset:
        """Few samples, many useless features, noisy labels: an MLP memorizes it within a few epochs."""
        del uploads_dir
        from sklearn.datasets import make_classification

        x, y = make_classification(
            n_samples=cfg.max_samples or SIZE,
            n_features=FEATURES,
            n_informative=6,
            n_redundant=0,
            flip_y=0.15,
            class_sep=1.5,
            random_state=GENERATOR_SEED,
        )
        names = [f"x{i}" for i in range(x.shape[1])]
        # max_samples is the generated size, so the cap in the split keeps every row.
        return split_and_scale(
            x,
            y,
            task="binary",
            classes=["0", "1"],
            names=names,
            label="overfit (synthetic)",
            cfg=cfg,
            validation_split=validation_split,
            seed=seed,
        )

    def script_settings(self, ctx: ScriptContext) -> list[Setting]:
        return [("GENERATOR_SEED", GENERATOR_SEED, "the synthetic set is one fixed set")]

    def script_pieces(self, ctx: ScriptContext) -> list[Piece]:
        source = code(
            '''
            def load_data() -> Data:
                """Synthetic: few noisy samples, many useless features; validation loss turns up."""
                x, y = make_classification(
                    n_samples=MAX_SAMPLES or <<size>>,
                    n_features=<<features>>,
                    n_informative=6,
                    n_redundant=0,
                    flip_y=0.15,
                    class_sep=1.5,
                    random_state=GENERATOR_SEED,
                )
                train, val, test = split_indices(y, classify=True)

            <<prep>>

                return to_data(prep, y, train, val, test, TASK, ["0", "1"])
            ''',
            size=str(SIZE),
            features=str(FEATURES),
            prep=textwrap.indent(SCALED_PREP, "    "),
        )
        imports = (
            "from sklearn.datasets import make_classification",
            "from sklearn.preprocessing import StandardScaler",
        )
        return [DATA_TUPLE, SPLIT, Piece(source, imports)]


OVERFIT = Overfit(
    "overfit",
    "Overfitting demo",
    "Synthetic: few noisy samples, many useless features; validation loss turns up within epochs.",
    "synthetic",
    "binary",
    "tabular",
    True,
    fixed_shape=(FEATURES,),
)
