"""scikit-learn's diabetes set (offline): a regression problem, 442 patients and 10 measurements,
the target a measure of disease progression one year later (25..346)."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np

from core.codegen import Piece, ScriptContext, code
from core.config import DataConfig
from core.data.contract import Dataset, DatasetInfo, DatasetSpec, Uploads, capped
from core.data.split import DATA_TUPLE, SCALED_PREP, SPLIT, split_and_scale

N_SAMPLES = 442


@dataclass(frozen=True)
class Diabetes(DatasetSpec):
    def describe(self, cfg: DataConfig, uploads_dir: Uploads) -> DatasetInfo:
        del uploads_dir
        return DatasetInfo(
            self.task, self.input_kind, None, capped(N_SAMPLES, cfg), input_shape=self.fixed_shape
        )

    def load(self, cfg: DataConfig, *, validation_split: float, seed: int, uploads_dir: Uploads) -> Dataset:
        del uploads_dir
        from sklearn.datasets import load_diabetes

        bunch = load_diabetes()
        return split_and_scale(
            bunch.data,
            bunch.target.astype(np.float64),
            task="regression",
            classes=[],
            names=[str(n) for n in bunch.feature_names],
            label="scikit-learn diabetes",
            cfg=cfg,
            validation_split=validation_split,
            seed=seed,
        )

    def script_pieces(self, ctx: ScriptContext) -> list[Piece]:
        source = code(
            '''
            def load_data() -> Data:
                """scikit-learn's 442 diabetes patients: 10 features, disease progression."""
                bunch = load_diabetes()
                x, y = bunch.data, bunch.target.astype(np.float64)
                train, val, test = split_indices(y, classify=False)

            <<prep>>

                return to_data(prep, y, train, val, test, TASK, [])
            ''',
            prep=textwrap.indent(SCALED_PREP, "    "),
        )
        imports = (
            "from sklearn.datasets import load_diabetes",
            "from sklearn.preprocessing import StandardScaler",
        )
        return [DATA_TUPLE, SPLIT, Piece(source, imports)]


DIABETES = Diabetes(
    "diabetes",
    "Diabetes (regression)",
    "scikit-learn's 442 patients, 10 measurements: predict disease progression a year later (MAE).",
    "builtin",
    "regression",
    "tabular",
    True,
    fixed_shape=(10,),
)
