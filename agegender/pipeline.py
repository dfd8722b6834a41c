"""tf.data pipelines that stream a store's shards (see store.py) into batches.

Each shard is a .npy file: a header, then fixed-size rows. FixedLengthRecordDataset reads those rows
straight from disk in TensorFlow's own threads, so memory holds only the shuffle buffer and a few
batches, however large the dataset.
"""
import functools
import math

from agegender import store
from agegender.faces import FACE_SIZE
from agegender.quiet_tensorflow import tf

SHUFFLE_BUFFER_FACES = 8192  # 128 MB of gray faces (384 MB RGB): mixes across shards without holding a whole split


def _read_shard(channels, images_path, labels_path, images_header, labels_header):
    images = tf.data.FixedLengthRecordDataset(images_path, store.row_bytes("images", channels),
                                              header_bytes=images_header)
    labels = tf.data.FixedLengthRecordDataset(labels_path, store.LABEL_ROW_BYTES, header_bytes=labels_header)
    return tf.data.Dataset.zip(images, labels)


def _decode_batch(channels, images, labels):
    images = tf.reshape(tf.io.decode_raw(images, tf.uint8), [-1, FACE_SIZE, FACE_SIZE, channels])
    columns = tf.cast(tf.reshape(tf.io.decode_raw(labels, tf.int16), [-1, len(store.LABEL_COLUMNS)]), tf.int32)
    return images, {name: columns[:, i] for i, name in enumerate(store.LABEL_COLUMNS)}


MAX_ROTATION_DEGREES = 15  # what faces in photos show; the scene benchmark rotates as much
ZOOM_RANGE = (0.9, 1.1)    # a detector's box varies about this much in size around a face
# Edge backgrounds: a face in a photo may stand against any background, and what a box takes in beyond
# the face changes with it; the scene benchmark's pasted faces lose 2.5 points of gender to their
# feathered edge alone (bench/scene_conditions.py). The feather spans this share of the face's side.
EDGE_FEATHER = (0.02, 0.15)


def augment_batch(images, seed, rotate_and_zoom=False, edge_backgrounds=False):
    """Random horizontal flips and shifts of up to 8 px, drawn per image from a stateless seed; with
    rotate_and_zoom, also rotations and zooms (one affine warp per face); with edge_backgrounds, half the
    faces' edges feathered into a background (edge_backgrounds_batch). Every channel of a face moves
    alike, so colour faces [b,128,128,3] are augmented as gray ones [b,128,128,1]."""
    images = _warp_batch(images, seed) if rotate_and_zoom else _flip_and_shift_batch(images, seed)
    if edge_backgrounds:
        images = edge_backgrounds_batch(images, tf.random.experimental.stateless_fold_in(seed, 2))
    return images


def _flip_and_shift_batch(images, seed):
    """Flip each face at random and shift it by up to 8 px, its border mirrored into the gap."""
    batch = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    flip = tf.random.stateless_uniform([batch, 1, 1, 1], seeds[0]) < 0.5
    images = tf.where(flip, tf.reverse(images, axis=[2]), images)
    shifts = tf.random.stateless_uniform([batch, 2], seeds[1], minval=-8, maxval=9, dtype=tf.int32)
    padded = tf.pad(images, [[0, 0], [8, 8], [8, 8], [0, 0]], mode="SYMMETRIC")
    # One gather per batch: each image's window starts at 8 + its shift in the padded batch.
    rows = tf.range(FACE_SIZE)[None, :] + 8 + shifts[:, 0:1]
    cols = tf.range(FACE_SIZE)[None, :] + 8 + shifts[:, 1:2]
    images = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(images, cols, axis=2, batch_dims=1)


def edge_backgrounds_batch(images, seed):
    """Half of the faces, drawn at random, have their outer edge feathered into a background, as a face
    pasted into a scene (or cut from a photo with a loose box) has: the face's weight falls linearly to
    0 at its border over a share of its side drawn from EDGE_FEATHER, and the background is another
    face of the batch turned upside down (the texture of a photo, no face where this one's is).
    uint8 in, uint8 out."""
    batch = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    faces = tf.cast(images, tf.float32)
    feather = tf.random.stateless_uniform([batch, 1], seeds[0], *EDGE_FEATHER) * FACE_SIZE
    to_border = tf.cast(tf.minimum(tf.range(FACE_SIZE), FACE_SIZE - 1 - tf.range(FACE_SIZE)), tf.float32)
    ramp = tf.minimum(to_border[None, :] / feather, 1.0)                  # [b, side]
    weight = (ramp[:, :, None] * ramp[:, None, :])[..., None]             # [b, side, side, 1]
    keep = tf.random.stateless_uniform([batch, 1, 1, 1], seeds[1]) >= 0.5
    weight = tf.where(keep, 1.0, weight)
    backgrounds = tf.reverse(faces, axis=[0, 1])  # the batch's faces in reverse order, upside down
    return tf.cast(tf.round(weight * faces + (1 - weight) * backgrounds), images.dtype)


def _warp_batch(images, seed):
    """Flip, rotate (up to MAX_ROTATION_DEGREES), zoom (ZOOM_RANGE) and shift (up to 8 px) each face
    about its centre, in one bilinear warp; pixels from outside the face mirror its border."""
    batch = tf.shape(images)[0]
    uniform = lambda i, low, high: tf.random.stateless_uniform(  # noqa: E731
        [batch], tf.random.experimental.stateless_fold_in(seed, i), minval=low, maxval=high)
    angle = uniform(0, -1.0, 1.0) * math.radians(MAX_ROTATION_DEGREES)
    zoom = uniform(1, *ZOOM_RANGE)
    flip = tf.where(uniform(2, 0.0, 1.0) < 0.5, -1.0, 1.0)
    shift_x, shift_y = uniform(3, -8.0, 8.0), uniform(4, -8.0, 8.0)
    # The warp maps each output pixel p to the input pixel A (p - c) + c + shift, with A a rotation
    # divided by the zoom, its first column negated for a flip.
    cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
    a00, a01, a10, a11 = flip * cos, -sin, flip * sin, cos
    centre = (FACE_SIZE - 1) / 2
    transforms = tf.stack([a00, a01, centre + shift_x - centre * (a00 + a01),
                           a10, a11, centre + shift_y - centre * (a10 + a11),
                           tf.zeros([batch]), tf.zeros([batch])], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=[FACE_SIZE, FACE_SIZE], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="REFLECT")


def split_dataset(folder, split, batch_size, training=False, augment=False, seed=0, pipelines=(1, 0),
                  shuffle_buffer=SHUFFLE_BUFFER_FACES, rotate_and_zoom=False, edge_backgrounds=False):
    """Batches (images uint8 [b,128,128,C], labels {column: int32 [b]}) of one split of a store; C is
    the store's channels (1 grayscale, 3 RGB).

    training=True shuffles shards and faces and drops the last partial batch (every step then has the
    same shape); otherwise the order is the store's and every face is seen once. augment=True adds
    random flips and shifts (rotate_and_zoom: rotations and zooms too; edge_backgrounds: edges
    feathered into backgrounds). The same seed gives the same batches, so a resumed run sees what the
    uninterrupted one saw. pipelines=(count, index): with several input pipelines (one per worker under
    tf.distribute), this one reads every count-th face from the index-th on, so that together they see
    each face once.
    """
    count, index = pipelines
    manifest = store.read_manifest(folder)
    shards = store.shard_paths(folder, manifest, split)
    columns = [list(column) for column in zip(*shards)] if shards else [[], []]
    headers = [[store.npy_header_bytes(path) for path in paths] for paths in columns]
    headers = [tf.constant(values, tf.int64, shape=[len(values)]) for values in headers]
    files = tf.data.Dataset.from_tensor_slices((columns[0], columns[1], headers[0], headers[1]))
    if training:
        files = files.shuffle(len(shards), seed=seed, reshuffle_each_iteration=True)
    # Deterministic: the same seed gives the same faces in the same order (sharding across pipelines
    # and an exact resume both need it).
    channels = store.face_channels(manifest)
    faces = files.interleave(functools.partial(_read_shard, channels),
                             cycle_length=max(1, min(len(shards), 4)),
                             num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if count > 1:
        faces = faces.shard(count, index)
    if training:
        faces = faces.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    batches = faces.batch(batch_size, drop_remainder=training).map(
        functools.partial(_decode_batch, channels), num_parallel_calls=tf.data.AUTOTUNE)
    if augment:
        counter = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        batches = tf.data.Dataset.zip(batches, counter).map(
            lambda batch, pair: (augment_batch(batch[0], pair, rotate_and_zoom, edge_backgrounds), batch[1]),
            num_parallel_calls=tf.data.AUTOTUNE)
    return batches.prefetch(tf.data.AUTOTUNE)

