"""The README's Python API page, as written there: descriptors of a folder of images in five
lines, a matrix of descriptors scored in three (on the demo, offline)."""
import numpy as np


def test_descriptors_of_a_folder_of_images_in_five_lines(tmp_path):
    import skimage.data
    from PIL import Image
    for name in ("astronaut", "coffee", "chelsea"):
        Image.fromarray(getattr(skimage.data, name)()).save(tmp_path / f"{name}.jpg")
    folder = tmp_path
    # -- the README's lines:
    from pathlib import Path
    from PIL import Image
    from features.deep import DeepExtractor
    from aggregators import SumPooling
    features = DeepExtractor()([Image.open(p).convert("RGB") for p in sorted(Path(folder).glob("*.jpg"))])
    X = SumPooling(center_prior=True).transform(features)      # (3, 1280) SPoC descriptors
    # --
    assert X.shape == (3, 1280) and np.isfinite(X).all()


def test_a_matrix_of_descriptors_scored_in_three_lines():
    from benchmarks.demo import demo_dataset
    dataset = demo_dataset()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(len(dataset.images), 16)).astype(np.float32)
    Q = X[[q.db_index for q in dataset.queries]]            # each demo query is a database image
    # -- the README's lines:
    from benchmarks import evaluate
    metrics, result = evaluate(dataset, Q, X)                 # one row per query, per image
    print(metrics["mAP"], metrics["mP@5"], result.indices[:, :5])
    # --
    assert 0 < metrics["mAP"] < 0.5 and result.indices.shape == (len(dataset.queries), 10)


def test_a_ranking_method_scored_in_five_lines():
    from benchmarks.demo import demo_dataset
    from benchmarks.evaluation import evaluate
    dataset = demo_dataset()
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(10, 16))
    X = (centres[np.repeat(np.arange(10), 8)] + 0.5 * rng.normal(size=(80, 16))).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)               # the demo: 10 photos x 8 views
    Q = X[[q.db_index for q in dataset.queries]]
    # -- the README's lines:
    from benchmarks.diffusion import Diffusion
    from benchmarks.evaluation import evaluate_search
    from benchmarks.rerank import query_db_indices
    method, own = Diffusion(k=5, query_k=5), query_db_indices(dataset)
    metrics, result = evaluate_search(dataset, lambda k, track: method.rank(Q, X, own, k, track=track))
    # --
    plain, _ = evaluate(dataset, Q, X)
    assert metrics["mAP"] > plain["mAP"] and result.indices.shape == (80, 10)
