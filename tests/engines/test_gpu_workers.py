"""GPU workers of the Ray engine, planned without a GPU: what each actor is asked for and
where it builds its backbone (no device machine is needed to check the plan)."""

from types import SimpleNamespace

from mgcl.engines import ray_engine


class RecordingDataset:
    def map_batches(self, fn, **kwargs):
        self.fn, self.kwargs = fn, kwargs
        return self


def pool(**kwargs):
    return SimpleNamespace(**kwargs)


def test_gpu_workers_ask_ray_for_gpus_and_build_the_backbone_on_cuda():
    backbone = SimpleNamespace(registry_spec=("aisfx", "x:y", {}), identity="aisfx@1")
    ds = ray_engine._map(RecordingDataset(), pool, backbone, workers=4, cpus=2.0, gpus=0.5, threads=2)
    assert ds.kwargs["num_gpus"] == 0.5 and ds.kwargs["num_cpus"] == 2.0
    assert ds.kwargs["fn_constructor_kwargs"]["device"] == "cuda"
    assert ds.kwargs["compute"].size == 4 and ds.fn is ray_engine.BatchEmbedder
    cpu = ray_engine._map(RecordingDataset(), pool, backbone, workers=2, cpus=1.0, gpus=0.0, threads=1)
    assert cpu.kwargs["num_gpus"] is None and cpu.kwargs["fn_constructor_kwargs"]["device"] == "cpu"


def test_gpu_workers_size_the_pool_and_a_private_instance_by_gpus():
    cluster = SimpleNamespace(cluster_resources=lambda: {"CPU": 64.0, "GPU": 4.0})
    assert ray_engine.default_workers(cluster, cpus_per_worker=4, gpus_per_worker=0.5) == 8
    assert ray_engine.default_workers(cluster, cpus_per_worker=4, gpus_per_worker=0) == 16
    assert ray_engine.local_resources(3, 1.0, 0.5) == {"num_cpus": 3, "num_gpus": 2}
    assert ray_engine.local_resources(2, 1.0, 0.0)["num_gpus"] is None
