"""The reward model as an MLflow pyfunc, logged from this file's code (MLflow models from code).

python -c "import mlflow, pandas as pd; m = mlflow.pyfunc.load_model('models:/reward-model@champion'); \
print(m.predict(pd.DataFrame({'prompt': ['Hi?'], 'response': ['Hello!']})))"

`rmcore.tracking.log_reward_model` logs this file with the saved rmcore model directory as the
artifact "model_dir"; MLflow runs the file again when it loads the model, in any process where
rmcore is importable. No class is pickled, so the artifact holds only readable code and the
model directory. It imports rmcore's serving code only (scoring and the model layer), never training.
"""

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

from rmcore.model.inference import TrainedModel, load_trained
from rmcore.scoring import score_rows, scoring_inputs
from rmcore.tracking import MODEL_DIR_ARTIFACT


def rewards_frame(raw: np.ndarray, normalized: np.ndarray | None) -> pd.DataFrame:
    """Column `reward` (raw), and `reward_normalized` = (reward - mean) / std when the model has them."""
    columns = {"reward": raw} if normalized is None else {"reward": raw, "reward_normalized": normalized}
    return pd.DataFrame({name: np.asarray(values, dtype=np.float64) for name, values in columns.items()})


class RewardPyfunc(PythonModel):
    """Rows (prompt, response) -> rewards: the numbers `rmcore score` gives for the same rows."""

    trained: TrainedModel

    def load_context(self, context: PythonModelContext) -> None:
        self.trained = load_trained(Path(context.artifacts[MODEL_DIR_ARTIFACT]))

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        prompts, responses = scoring_inputs(model_input.to_dict("records"))
        return rewards_frame(*score_rows(self.trained, prompts, responses))


mlflow.models.set_model(RewardPyfunc())
