"""The learning engine's arithmetic (hardware.onchip.arithmetic) on cases worked by hand;
its equality with Lava's LearningDense is in test_onchip_lava.py."""

from __future__ import annotations

import numpy as np

from hardware.onchip import arithmetic


def test_random_stream_is_the_sequence_of_single_draws_lava_makes():
    stream = arithmetic.RandomStream(7)
    rng = np.random.default_rng(7)
    singles = [rng.random(1)[0] for _ in range(5000)]
    assert [stream[index] for index in range(5000)] == singles


def test_pre_trace_halves_with_round_half_even_and_wraps_above_511():
    payload = np.array([0, 1, 3, 5, 254, 255, 511, 512])
    assert arithmetic.pre_trace_fixed(payload).tolist() == [0, 0, 2, 2, 127, 128, 0, 0]


def test_factor_is_split_by_sign_rounded_and_clipped_to_seven_bits():
    y2, y3 = arithmetic.factor_fixed(np.array([0, 5, -6, 1000, -1000, 7]), shift=1)
    assert y2.tolist() == [0, 3, 0, 127, 0, 4]
    assert y3.tolist() == [0, 0, 3, 0, 127, 0]
    y2, _ = arithmetic.factor_fixed(np.array([3]), shift=-2)
    assert y2.tolist() == [12]


def test_decay_with_a_large_tau_keeps_a_trace_unless_the_random_number_is_high():
    values = np.array([0, 1, 64, 127])
    assert arithmetic.decay_fixed(values, 3, 65535, random=0.5).tolist() == [0, 1, 64, 127]
    # exp(-1/65535) v loses v / 65535: 127 -> 126.998 is kept only while r < 0.998
    assert arithmetic.decay_fixed(values, 1, 65535, random=0.9999).tolist() == [0, 1, 63, 126]


def test_apply_fixed_adds_an_eighth_of_the_float_product_in_weight_units():
    weights = np.zeros((2, 3), dtype=np.int32)
    x0 = np.array([True, True, False])
    x1 = np.array([64, 32, 127])
    y2, y3 = np.array([16, 0]), np.array([0, 16])
    learned = arithmetic.apply_fixed(weights, x0, x1, y2, y3, mantissa=1, exponent=0,
                                     random=0.5)
    # float: 1 * 2^0 * x1 * y = 1024 and 512; fixed: (x1 y m >> 3) << 7 in w << 7 units
    assert learned.tolist() == [[128, 64, 0], [-128, -64, 0]]


def test_apply_fixed_rounds_stochastically_with_one_number_and_saturates():
    weights = np.array([[250, -250]], dtype=np.int32)
    x0 = np.array([True, True])
    x1 = np.array([1, 1])
    y2, y3 = np.array([100]), np.array([0])
    # product (1 * 100 * 7 >> 3) << 7 = 87 << 7: +87/128 of a weight unit... times 2^8
    up = arithmetic.apply_fixed(weights, x0, x1, y2, y3, mantissa=7, exponent=-7, random=0.1)
    down = arithmetic.apply_fixed(weights, x0, x1, y2, y3, mantissa=7, exponent=-7,
                                  random=0.9)
    assert up.tolist() == [[251, -249]] and down.tolist() == [[250, -250]]
    big = arithmetic.apply_fixed(weights, x0, np.array([127, 127]), np.array([127]),
                                 np.array([0]), mantissa=7, exponent=8, random=0.5)
    assert big.tolist() == [[255, 6]]  # -32000 + 32767 = 767: 5.99 rounds up
