"""The mapper: slices within every core limit, each neuron placed once, XY routes, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import graph_of, make_chip, random_graph, tiny_model_files, write_model
from neurosim.errors import UserError
from neurosim.graph.graph import Conv2d, Dense, Population
from neurosim.zoo.loader import load_model
from neurosim.mapping.mapper import HOST, axon_hops, core_coordinates, map_graph, utilisation_table
from neurosim.programs import KINDS


def independent_usage(graph, chip, mapping) -> dict[str, np.ndarray]:
    """Each core's use of each limit, recomputed from the graph and `core_of` alone."""
    core, n = chip.core, mapping.n_cores
    core_of = mapping.core_of
    placed = core_of[core_of >= 0]
    neurons = np.bincount(placed, minlength=n)
    state = np.zeros(n)
    for name, pop in graph.populations.items():
        lo = mapping.offsets[name]
        c = core_of[lo:lo + pop.size]
        per_neuron_arrays = sum(isinstance(v, np.ndarray) for v in pop.params.values())
        state += np.bincount(c[c >= 0], minlength=n) * (KINDS[pop.kind].state_bytes + 4 * per_neuron_arrays)
    syn_bytes = np.zeros(n)
    fan_in_pairs, axons = set(), set()
    for p_idx, proj in enumerate(graph.projections.values()):
        csr = proj.to_csr()
        src = np.repeat(np.arange(len(csr.indptr) - 1), np.diff(csr.indptr)) + mapping.offsets[proj.source]
        tgt_core = core_of[csr.indices.astype(np.int64) + mapping.offsets[proj.target]]
        if isinstance(proj, Conv2d):
            # the shared kernel of each output channel is stored once per core
            oc, ic, kh, kw = proj.weight.shape
            channel = csr.indices // (proj.out_shape[1] * proj.out_shape[2])
            for c, ch in set(zip(tgt_core.tolist(), channel.tolist())):
                syn_bytes[c] += ic * kh * kw * proj.weight_bits / 8
        else:
            index_bits = 0 if isinstance(proj, Dense) else core.synapses.sparse_index_bits
            per = (proj.weight_bits + index_bits) / 8
            syn_bytes += np.bincount(tgt_core, minlength=n) * per
        fan_in_pairs |= set(zip(tgt_core.tolist(), src.tolist()))
        axons |= set(zip(src.tolist(), tgt_core.tolist(), [p_idx] * len(src)))
    fan_in = np.bincount([c for c, _ in fan_in_pairs], minlength=n)
    src_cores = [core_of[s] for s, _, _ in axons if core_of[s] >= 0]
    fan_out = np.bincount(np.array(src_cores, np.int64), minlength=n)
    core_pairs = {(core_of[s], c) for s, c, _ in axons if core_of[s] >= 0}
    routes = np.bincount(np.array([a for a, _ in core_pairs], np.int64), minlength=n)
    return {"neurons": neurons, "neuron_state_bytes": state, "synapse_memory_bytes": syn_bytes,
            "memory_bytes": state + syn_bytes, "fan_in": fan_in, "fan_out": fan_out, "routes": routes}


def assert_valid_mapping(graph, chip, mapping) -> None:
    """Every neuron is on exactly one slice; slices tile each population; every limit holds."""
    for name, pop in graph.populations.items():
        ranges = sorted((s.lo, s.hi, s.core) for s in mapping.slices if s.population == name)
        assert ranges[0][0] == 0 and ranges[-1][1] == pop.size, name
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:])), f"{name}: slices overlap or leave a gap"
        assert all(lo < hi for lo, hi, _ in ranges)
        for lo, hi, c in ranges:
            expected = HOST if KINDS[pop.kind].on_host else c
            assert np.all(mapping.core_of[mapping.offsets[name] + lo:mapping.offsets[name] + hi] == expected)
    cores = [s.core for s in mapping.slices if s.core >= 0]
    assert sorted(cores) == list(range(mapping.n_cores)), "each used core holds exactly one slice"
    assert mapping.n_neurons == graph.n_neurons
    usage = independent_usage(graph, chip, mapping)
    limits = chip.core.limits
    for name, used in usage.items():
        assert used.max() <= getattr(limits, name), f"{name}: {used.max()} > {getattr(limits, name)}"
        if name in mapping.utilisation:
            np.testing.assert_allclose(mapping.utilisation[name], used, err_msg=name)


LIMITS = {
    "neurons": dict(neurons=5),
    "neuron_state_bytes": dict(neuron_state_bytes=40),
    "synapse_memory_bytes": dict(synapse_memory_bytes=200),
    "memory_bytes": dict(memory_bytes=150, neuron_state_bytes=120, synapse_memory_bytes=120),
    "fan_in": dict(fan_in=70),
    "fan_out": dict(fan_out=25),
    "all": dict(neurons=9, memory_bytes=400, neuron_state_bytes=100, synapse_memory_bytes=350, fan_in=80,
                fan_out=60),
}


@pytest.mark.parametrize("limit", list(LIMITS))
@pytest.mark.parametrize("seed", range(3))
def test_partition_respects_every_limit(limit, seed):
    """Shrinking one limit at a time (and all at once) gives more cores, never an overfull one."""
    graph = random_graph(seed)
    chip = make_chip(**LIMITS[limit])
    mapping = map_graph(graph, chip)
    assert_valid_mapping(graph, chip, mapping)
    unlimited = map_graph(graph, make_chip())
    assert mapping.n_cores > unlimited.n_cores, "the limit was binding"
    for row in utilisation_table(mapping):
        assert all(0 <= row[k] <= 1 for k in mapping.limits), row


def test_one_population_per_core_by_default(loihi2):
    """Without binding limits each on-chip population takes one core; inputs stay on the host."""
    graph = random_graph(0)
    mapping = map_graph(graph, loihi2)
    assert_valid_mapping(graph, loihi2, mapping)
    assert mapping.n_cores == 4 and mapping.chips_used == 1
    assert [s.core for s in mapping.slices] == [HOST, 0, 1, 2, 3]


# ---------------------------------------------------------------------------------------------
# placement and routes


def test_core_coordinates_fill_routers_row_major():
    """Cores fill router by router, rows of routers first, chip by chip on the system grid."""
    chip = make_chip(routers_x=3, routers_y=2, cores_per_router=2, chips_x=2, chips_y=2)
    chip_idx, x, y = core_coordinates(chip, np.array([0, 1, 2, 5, 6, 11, 12, 13, 25, 47]))
    assert chip_idx.tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 2, 3]
    assert list(zip(x.tolist(), y.tolist())) == [(0, 0), (0, 0), (1, 0), (2, 0), (0, 1), (2, 1),
                                                 (3, 0), (3, 0), (0, 2), (5, 3)]


def _chain(n: int):
    """A host input of one neuron -> `n` LIF neurons -> `n` LIF neurons, all to all."""
    pops = [Population("inp", "graded_source", 1), Population("a", "loihi_lif", n, {"vth": 1}),
            Population("b", "loihi_lif", n, {"vth": 1})]
    projs = [Dense("ia", "inp", "a", np.ones((n, 1), np.int8), 0), Dense("ab", "a", "b", np.ones((n, n), np.int8), 0)]
    return graph_of(pops, projs, input_pop="inp", readout_pop="b")


def test_xy_hop_counts_on_a_small_mesh():
    """On a 3 x 2 router mesh with 2 cores per router and one neuron per core, every axon's
    E-W and N-S hops are |dx| and |dy| between routers; host messages enter at router (0, 0)
    over one link."""
    chip = make_chip(neurons=1, routers_x=3, routers_y=2, cores_per_router=2)
    mapping = map_graph(_chain(6), chip)
    r = mapping.routes
    hops_ew, hops_ns, links = axon_hops(chip, mapping)
    src = np.repeat(np.arange(mapping.n_neurons), np.diff(r.axon_ptr))
    router = lambda core: (core // 2 % 3, core // 6)  # noqa: E731  (x, y) of a core, by hand
    assert r.n_axons == 6 + 36
    for a in range(r.n_axons):
        dst = router(int(r.axon_core[a]))
        s_core = int(mapping.core_of[src[a]])
        if s_core == HOST:
            expected = (dst[0], dst[1], 1)
        else:
            s = router(s_core)
            expected = (abs(dst[0] - s[0]), abs(dst[1] - s[1]), 0)
        assert (hops_ew[a], hops_ns[a], links[a]) == expected
    # spot checks: core 0 (router (0,0)) to core 11 (router (2,1)); core 1 to core 0 (same router)
    a0 = [a for a in range(r.axon_ptr[1], r.axon_ptr[2]) if r.axon_core[a] == 11][0]
    assert (hops_ew[a0], hops_ns[a0]) == (2, 1)


def test_hops_across_chips_count_links_not_on_chip_hops():
    """Two chips side by side, 2 routers each: core 0 (x=0) to core 3 (x=3) is 2 on-chip
    E-W hops and 1 link crossing."""
    chip = make_chip(neurons=1, routers_x=2, routers_y=1, cores_per_router=1, chips_x=2)
    pops = [Population("a", "loihi_lif", 1, {"vth": 1}), Population("pad", "loihi_lif", 2, {"vth": 1}),
            Population("b", "loihi_lif", 1, {"vth": 1})]
    graph = graph_of(pops, [Dense("ab", "a", "b", np.ones((1, 1), np.int8), 0)], input_pop="a", readout_pop="b")
    mapping = map_graph(graph, chip)
    r = mapping.routes
    assert mapping.chips_used == 2 and r.n_axons == 1 and r.axon_core[0] == 3
    assert tuple(int(h[0]) for h in axon_hops(chip, mapping)) == (2, 0, 1)


def test_one_axon_per_destination_core_and_projection():
    """A neuron sends one message per destination core, carrying all its synapses there."""
    graph = _chain(8)
    mapping = map_graph(graph, make_chip(neurons=3))
    r = mapping.routes
    a_lo = mapping.offsets["a"]
    for n in range(a_lo, a_lo + 8):
        axons = range(r.axon_ptr[n], r.axon_ptr[n + 1])
        assert [int(r.axon_core[a]) for a in axons] == [3, 4, 5]            # b sits on cores 3, 4, 5
        assert [int(r.axon_syn_ptr[a + 1] - r.axon_syn_ptr[a]) for a in axons] == [3, 3, 2]
        targets = np.concatenate([r.core_dendrite[r.axon_core[a]] + r.syn_target[r.axon_syn_ptr[a]:r.axon_syn_ptr[a + 1]]
                                  for a in axons])
        assert sorted(targets.tolist()) == list(range(mapping.offsets["b"], mapping.offsets["b"] + 8))


# ---------------------------------------------------------------------------------------------
# models that do not fit


def test_too_few_cores_names_population_and_excess():
    """A one-core system cannot hold two populations: the error names the second one."""
    graph = random_graph(0)
    chip = make_chip(routers_x=1, routers_y=1, cores_per_router=1)
    with pytest.raises(UserError) as err:
        map_graph(graph, chip)
    e = err.value
    assert e.field == "populations.d"
    assert "needs at least 4 cores (4 chips of 1), the system has 1 (exceeded by 3)" in e.message


@pytest.mark.parametrize("graph, limits, population, limit, amount", [
    ("random", dict(fan_in=20), "a", "fan_in", None),
    ("random", dict(synapse_memory_bytes=40, memory_bytes=100, neuron_state_bytes=50), "a",
     "synapse_memory_bytes", None),
    # a neuron of a: two state words and a word for its per-neuron dv
    ("random", dict(neuron_state_bytes=4), "a", "neuron_state_bytes", 12),
    # a neuron of b: 8 dense synapses (8 bytes) and 8 bytes of state, within each maximum but not their sum
    ("chain", dict(memory_bytes=12, neuron_state_bytes=12, synapse_memory_bytes=12), "b", "memory_bytes", 16),
])
def test_single_neuron_over_a_limit_names_it(graph, limits, population, limit, amount):
    """When one neuron alone exceeds a core limit, the error names population, limit and excess."""
    with pytest.raises(UserError) as err:
        map_graph(random_graph(0) if graph == "random" else _chain(8), make_chip(**limits))
    e = err.value
    assert e.field == f"populations.{population}"
    assert f"of {limit}, a core has {limits[limit]:,}" in e.message
    needed = int(e.message.split(" alone needs ")[1].split(" ")[0].replace(",", ""))
    assert needed > limits[limit] and f"exceeded by {needed - limits[limit]:,}" in e.message
    if amount is not None:
        assert needed == amount


def test_fan_out_error_names_population():
    """A neuron whose messages go to more cores than a core may send to cannot be placed."""
    with pytest.raises(UserError, match=r"output axons \(fan_out\), a core has 2 \(exceeded by") as err:
        map_graph(_chain(8), make_chip(neurons=2, fan_out=2))
    assert err.value.field == "populations.a"


def test_model_that_does_not_fit_points_at_its_file_and_line(tmp_path, loihi2):
    """Loaded from disk, the error names model.yaml and the population's line in it."""
    spec, arrays, attrs = tiny_model_files(np.random.default_rng(0))
    folder = write_model(tmp_path / "tiny", spec, arrays, attrs)
    graph, text = load_model(folder)
    one_core = make_chip(routers_x=1, routers_y=1, cores_per_router=1)
    with pytest.raises(UserError) as err:
        map_graph(graph, one_core)
    e = err.value
    assert e.file == str(folder / "model.yaml") and e.field == "populations.out"
    assert text.splitlines()[e.line - 1].strip() == "out:"
    assert str(e).startswith(f"{folder / 'model.yaml'}:{e.line}: populations.out: does not fit")


def test_projection_into_a_host_population_is_refused(loihi2):
    """Host inputs take no synaptic input: a projection into one is a UserError naming it."""
    graph = _chain(4)
    graph.projections["back"] = Dense("back", "b", "inp", np.ones((1, 4), np.int8), 0)
    with pytest.raises(UserError, match="'inp' is a graded_source population on the host") as err:
        map_graph(graph, loihi2)
    assert err.value.field == "projections.back.target"
