"""The book's heatmaps: one colour scale per figure, one mask convention (lmcourse.plots)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from lmcourse.plots import ALLOWED_COLOR, BLOCKED_COLOR, attention_maps, heatmap, show_mask  # noqa: E402


def test_show_mask_paints_allowed_and_blocked_in_the_book_colours():
    fig, ax = plt.subplots()
    allowed = torch.tril(torch.ones(4, 4, dtype=torch.bool))
    image = show_mask(ax, allowed, labels=list("abcd"))
    rgba = image.to_rgba(image.get_array())  # (4, 4, 4) colours as drawn
    assert np.allclose(rgba[3, 0], to_rgba(ALLOWED_COLOR)) and np.allclose(rgba[0, 3], to_rgba(BLOCKED_COLOR))
    assert [t.get_text() for t in ax.get_xticklabels()] == list("abcd")
    plt.close(fig)


def test_attention_maps_share_one_scale_and_one_colourbar():
    maps = [torch.softmax(torch.randn(5, 5), -1), 0.5 * torch.softmax(torch.randn(5, 5), -1), torch.eye(5)]
    fig = attention_maps(maps, titles=["a", "b", "c"], x_labels=list("vwxyz"), y_labels=list("vwxyz"), ncols=2)
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 3 and {im.get_clim() for im in images} == {(0.0, 1.0)}  # the largest weight is 1
    assert len(fig.axes) == 4 + 1  # a 2 x 2 grid (one hidden) and one colourbar
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == []  # y labels on the first column only
    plt.close(fig)


def test_attention_maps_refuse_a_batch_of_maps_with_a_hint():
    with pytest.raises(ValueError, match=r"weights\[0, head\]"):
        attention_maps([torch.zeros(2, 3, 3)])
    with pytest.raises(ValueError, match="label lists"):
        attention_maps([np.eye(2), np.eye(2)], x_labels=[["a", "b"]])
    with pytest.raises(ValueError, match="3 x labels for 2 columns"):
        attention_maps([np.eye(2)], x_labels=["a", "b", "c"])


def test_heatmap_centres_a_signed_scale():
    fig, ax = plt.subplots()
    image = heatmap(ax, np.array([[-1.0, 0.5], [2.0, 0.0]]), cmap="RdBu_r", center=0.0, colorbar_label="value")
    assert image.get_clim() == (-2.0, 2.0) and len(fig.axes) == 2
    plt.close(fig)
