"""Static power by board: the chips a system powers and the board's own."""

from pathlib import Path

import pytest

from neurosim.spec.chip import load_chip

CHIPS = Path(__file__).resolve().parent.parent / "chips"


def chip(name: str):
    return load_chip(CHIPS / f"{name}.yaml")[0]


def test_a_system_that_powers_used_chips_pays_for_those_only():
    system = chip("loihi2_32chip")
    per_chip = system.chip.static_power_w
    assert system.static_power_w(24) == pytest.approx(24 * per_chip)
    assert system.static_power_w(1) < system.static_power_w(24)


def test_a_board_that_powers_every_chip_pays_for_all_and_for_itself():
    board = chip("loihi2_kapoho_point")
    assert board.static_power_w(1) == board.static_power_w(8) == pytest.approx(8 * board.chip.static_power_w)
    vpx = chip("loihi2_vpx")
    assert vpx.static_power_w(2) == pytest.approx(16 * vpx.chip.static_power_w + vpx.system.board_static_power_w)
    assert vpx.static_power_w(2) == pytest.approx(16.05, abs=0.01)     # the measured system, by construction


def test_the_single_chip_board_adds_its_own_cores():
    board, bare = chip("loihi2_oheo_gulch"), chip("loihi2")
    assert board.static_power_w(1) == pytest.approx(bare.static_power_w(1) + board.system.board_static_power_w)
    assert board.static_power_w(1) > 1.5 * bare.static_power_w(1)
