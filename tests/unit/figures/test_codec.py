"""The typed-array encoding of arrays inside figure dicts: what goes in comes back out."""

import numpy as np
import pytest

from app.figures.codec import decode_array, typed_array


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int16, np.uint8, np.int8])
def test_an_array_comes_back_with_its_dtype_shape_and_values(dtype):
    values = (np.arange(24) - 12).reshape(2, 3, 4)[:, ::2].astype(dtype)  # a non-contiguous view, too
    decoded = decode_array(typed_array(values))
    assert decoded.dtype == dtype and decoded.shape == values.shape
    np.testing.assert_array_equal(decoded, values)


def test_a_plain_list_is_read_as_it_is():
    np.testing.assert_array_equal(decode_array([[1, 2], [3, 4]]), [[1, 2], [3, 4]])
