"""AudioFeatures batches and the padding helper they share with the methods."""

import torch

from mgcl.types import AudioFeatures, cat_padded


def test_cat_padded_pads_rows_and_masks_to_the_longest():
    a, ma = torch.ones(2, 3, 4), torch.tensor([[True, True, False], [True, True, True]])
    b, mb = 2 * torch.ones(1, 5, 4), torch.ones(1, 5, dtype=torch.bool)
    rows, mask = cat_padded([(a, ma), (b, mb)])
    assert rows.shape == (3, 5, 4) and mask.shape == (3, 5)
    assert torch.equal(rows[:2, :3], a) and (rows[:2, 3:] == 0).all() and torch.equal(rows[2], b[0])
    assert mask.sum(1).tolist() == [2, 3, 5]


def test_audio_features_cat_keeps_each_clip_and_its_real_frames():
    x = AudioFeatures.stack([(torch.ones(4), torch.ones(2, 4)), (2 * torch.ones(4), 2 * torch.ones(3, 4))])
    y = AudioFeatures.stack([(3 * torch.ones(4), 3 * torch.ones(5, 4))])
    z = AudioFeatures.cat([x, y])
    assert z.frames.shape == (3, 5, 4) and z.frame_mask.sum(1).tolist() == [2, 3, 5]
    for (clip, frames), value in zip(z.split(), (1, 2, 3)):
        assert (clip == value).all() and (frames == value).all()
