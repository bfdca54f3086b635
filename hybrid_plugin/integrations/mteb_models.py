"""``hybrid-plugin mteb run -m ./local/model/dir``: MTEB metadata and a loader for local model folders.

mteb resolves ``-m`` only through its model registry or the Hugging Face hub, and its maintainers
declined local folders there (people pass a SentenceTransformer in Python instead), so the plugin
leaves mteb's lookup alone and loads folders in its own ``mteb run`` with this metadata: name
``local/<folder name>``, revision = the first 12 hex digits of the folder's content fingerprint (so
results of different weights never share a results folder), or the name and revision given for the
results repository.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hybrid_plugin.errors import UserError
from hybrid_plugin.paths import path_component


def check_result_names(model_name: str | None, revision: str | None) -> None:
    """A UserError unless the folder ``results/<org>__<name>/<revision>/`` that mteb makes of these
    stays inside the output folder: the revision one folder name, each '/'-part of the model name one."""
    if revision is not None:
        path_component(revision, "--revision")
    for part in model_name.split("/") if model_name is not None else ():
        path_component(part, f"--model-name {model_name!r}: part")


def is_model_folder(name: str) -> bool:
    """A local folder sentence-transformers can load (``modules.json`` or transformers' ``config.json``)."""
    path = Path(name).expanduser()
    return path.is_dir() and ((path / "modules.json").is_file() or (path / "config.json").is_file())


def local_model_meta(name: str, *, model_name: str | None = None, revision: str | None = None) -> Any:
    """ModelMeta for a local model folder (no weights are loaded, the folder is fingerprinted)."""
    check_result_names(model_name, revision)
    from mteb.models import ModelMeta
    from mteb.models.model_meta import ScoringFunction

    from hybrid_plugin.integrations.mteb_encoder import folder_fingerprint
    from hybrid_plugin.models.ref import resolve_model

    ref = resolve_model(str(Path(name).expanduser()))
    fingerprint = folder_fingerprint(str(ref.path))
    return ModelMeta.create_empty(
        overwrites=dict(
            loader=load_local_sentence_transformer,
            loader_kwargs={"model_path": str(ref.path)},
            name=model_name or f"local/{ref.path.name}",
            revision=revision or fingerprint[:12],
            framework=["Sentence Transformers", "PyTorch"],
            similarity_fn_name=ScoringFunction.from_str(ref.similarity),
            use_instructions=bool(ref.query_prompt or ref.document_prompt),
            modalities=["text"],
            model_type=["dense"],
        )
    )


def load_local_sentence_transformer(
    model_name: str, revision: str | None = None, *, model_path: str, device: str | None = None, **kwargs: Any
) -> Any:
    """MTEB loader: the folder as a SentenceTransformer (never with remote code), in mteb's wrapper."""
    from mteb.models import SentenceTransformerEncoderWrapper
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(model_path, device=device, trust_remote_code=False)
    except Exception as err:  # noqa: BLE001 - any failure to load is a bad model folder
        raise UserError(f"cannot load model {model_name} from {model_path}: {err}".splitlines()[0]) from None
    return SentenceTransformerEncoderWrapper(model, **kwargs)
