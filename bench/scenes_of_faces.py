"""Scenes for the scene benchmark (bench/scene_benchmark.py) and the detector tests: real UTKFace chips
pasted into larger pictures at random size, place, rotation and brightness, on backgrounds of none of
a face's colours. Seeded: the same arguments give the same scenes."""
import cv2
import matplotlib
import matplotlib.cbook
import matplotlib.colors
import numpy as np

SCENE_SIZES = ((640, 480), (800, 600), (1024, 768), (1280, 960), (768, 1024))  # width, height
FACE_SIDES = (60, 400)       # pasted chip side in pixels, drawn log-uniformly
MAX_ROTATION = 15            # degrees either way
FACES_PER_SCENE = {0: 0.15, 1: 0.5, 2: 0.15, 3: 0.12, 4: 0.08}  # probabilities
CHIP_SIDE = 200

# ---- backgrounds: nothing of a face's colours, a variety of edges and textures ---------------------------

def random_colour(rng):
    return rng.integers(0, 256, 3).astype(np.float32)


def noise_texture(rng, width, height):
    """Coloured noise summed over a few scales, like foliage, gravel or fabric."""
    texture = np.zeros((height, width, 3), np.float32)
    for cell in rng.choice([4, 8, 16, 32, 64], size=3, replace=False):
        small = rng.normal(0, 1, (height // cell + 2, width // cell + 2, 3)).astype(np.float32)
        texture += cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    texture = (texture - texture.min()) / (np.ptp(texture) + 1e-6)
    return random_colour(rng) * texture + random_colour(rng) * (1 - texture)


def gradient(rng, width, height):
    angle = rng.uniform(0, 2 * np.pi)
    x, y = np.meshgrid(np.linspace(0, 1, width), np.linspace(0, 1, height))
    ramp = (np.cos(angle) * x + np.sin(angle) * y)[..., None]
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
    return random_colour(rng) * ramp + random_colour(rng) * (1 - ramp) + rng.normal(0, 4, (height, width, 3))


def stripes(rng, width, height):
    angle, period = rng.uniform(0, np.pi), rng.uniform(8, 120)
    x, y = np.meshgrid(np.arange(width), np.arange(height))
    wave = np.sin((np.cos(angle) * x + np.sin(angle) * y) * 2 * np.pi / period)
    if rng.random() < 0.5:  # a checkerboard
        wave = wave * np.sin((-np.sin(angle) * x + np.cos(angle) * y) * 2 * np.pi / period)
    level = (np.sign(wave) if rng.random() < 0.5 else wave)[..., None] * 0.5 + 0.5
    return random_colour(rng) * level + random_colour(rng) * (1 - level)


def clutter(rng, width, height):
    """Rectangles, circles, lines and matplotlib's sample pictures on a plain ground, as a desk or a shelf."""
    canvas = np.empty((height, width, 3), np.float32)
    canvas[:] = random_colour(rng)
    for _ in range(rng.integers(8, 40)):
        colour = tuple(float(c) for c in random_colour(rng))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        size = int(rng.integers(10, max(11, min(width, height) // 3)))
        kind = rng.integers(0, 4)
        if kind == 0:
            cv2.rectangle(canvas, (x, y), (x + size, y + int(size * rng.uniform(0.3, 2))), colour, -1)
        elif kind == 1:
            cv2.circle(canvas, (x, y), size // 2, colour, -1)
        elif kind == 2:
            cv2.line(canvas, (x, y), (int(rng.integers(0, width)), int(rng.integers(0, height))), colour,
                     int(rng.integers(1, 8)))
        else:
            picture = SAMPLE_PICTURES[int(rng.integers(0, len(SAMPLE_PICTURES)))]
            paste_picture(canvas, picture, x, y, size)
    return canvas


def terrain(rng, width, height):
    """Matplotlib's sample elevation maps, shaded and coloured with a random colour map."""
    elevation = SAMPLE_TERRAIN[int(rng.integers(0, len(SAMPLE_TERRAIN)))]
    rows, cols = elevation.shape
    crop_h, crop_w = int(rows * rng.uniform(0.4, 1)), int(cols * rng.uniform(0.4, 1))
    top, left = int(rng.integers(0, rows - crop_h + 1)), int(rng.integers(0, cols - crop_w + 1))
    patch = elevation[top:top + crop_h, left:left + crop_w]
    shade = matplotlib.colors.LightSource(azdeg=rng.uniform(0, 360), altdeg=rng.uniform(20, 60))
    colour_map = matplotlib.colormaps[rng.choice(["terrain", "gist_earth", "viridis", "copper", "ocean", "cividis"])]
    rgb = shade.shade(patch, cmap=colour_map, blend_mode="soft")[..., :3] * 255
    return cv2.resize(rgb.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)[..., ::-1]


BACKGROUNDS = (noise_texture, gradient, stripes, clutter, terrain)


def load_samples():
    """matplotlib's sample elevation maps and its non-face pictures (a present, its logo)."""
    dem = matplotlib.cbook.get_sample_data("jacksboro_fault_dem.npz")["elevation"]
    topo = matplotlib.cbook.get_sample_data("topobathy.npz")["topo"]
    pictures = []
    for name in ("Minduka_Present_Blue_Pack.png", "logo2.png"):
        rgba = cv2.imread(str(matplotlib.cbook.get_sample_data(name, asfileobj=False)), cv2.IMREAD_UNCHANGED)
        pictures.append(rgba.astype(np.float32))
    return [dem.astype(np.float64), topo.astype(np.float64)], pictures


SAMPLE_TERRAIN, SAMPLE_PICTURES = load_samples()


def paste_picture(canvas, rgba, x, y, size):
    """Paste a BGRA picture, its longer side `size`, at (x, y), clipped to the canvas."""
    scale = size / max(rgba.shape[:2])
    picture = cv2.resize(rgba, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = min(picture.shape[0], canvas.shape[0] - y), min(picture.shape[1], canvas.shape[1] - x)
    alpha = picture[:h, :w, 3:] / 255
    canvas[y:y + h, x:x + w] = alpha * picture[:h, :w, :3] + (1 - alpha) * canvas[y:y + h, x:x + w]


# ---- scenes ----------------------------------------------------------------------------------------------

def feathered_mask(side, feather=0.08):
    """1 inside the chip, falling to 0 over its outer `feather` fraction: no hard square edge."""
    ramp = np.clip(np.minimum(np.arange(side), np.arange(side)[::-1]) / (feather * side), 0, 1)
    return np.outer(ramp, ramp).astype(np.float32)


def chip_to_scene(centre, side, angle):
    """The affine transform taking a chip's pixels to the scene's: scaled, rotated about its centre, moved."""
    transform = cv2.getRotationMatrix2D((CHIP_SIDE / 2, CHIP_SIDE / 2), angle, side / CHIP_SIDE)
    transform[:, 2] += np.array(centre) - CHIP_SIDE / 2
    return transform


def paste_face(scene, chip, centre, side, angle, gain, bias):
    """Paste a chip scaled to `side` px, rotated by `angle` degrees about its centre, brightness changed."""
    height, width = scene.shape[:2]
    transform = chip_to_scene(centre, side, angle)
    face = np.clip(chip.astype(np.float32) * gain + bias, 0, 255)
    interpolation = cv2.INTER_AREA if side < CHIP_SIDE else cv2.INTER_LINEAR
    face = cv2.warpAffine(face, transform, (width, height), flags=interpolation)
    alpha = cv2.warpAffine(feathered_mask(CHIP_SIDE), transform, (width, height))[..., None]
    scene *= 1 - alpha
    scene += alpha * face


def place_faces(rng, count, width, height):
    """(centre, side) of `count` faces that do not overlap and lie inside the scene."""
    placed = []
    largest = min(FACE_SIDES[1], 0.75 * min(width, height))
    for _ in range(count):
        for _attempt in range(100):
            side = float(np.exp(rng.uniform(np.log(FACE_SIDES[0]), np.log(largest))))
            reach = side * 0.6  # half the diagonal of a square rotated by up to 15 degrees, and a little
            centre = (rng.uniform(reach, width - reach), rng.uniform(reach, height - reach))
            if all(np.hypot(centre[0] - c[0], centre[1] - c[1]) > 0.75 * (side + s) for c, s in placed):
                placed.append((centre, side))
                break
    return placed


def make_scene(seed, index, chips):
    """Scene `index`: (BGR uint8 image, [(face number, centre, side, angle)]); chips(count) gives the next faces."""
    rng = np.random.default_rng([seed, index])
    width, height = SCENE_SIZES[int(rng.integers(0, len(SCENE_SIZES)))]
    scene = BACKGROUNDS[int(rng.integers(0, len(BACKGROUNDS)))](rng, width, height).astype(np.float32)
    count = int(rng.choice(list(FACES_PER_SCENE), p=list(FACES_PER_SCENE.values())))
    faces = []
    for (centre, side), (number, chip) in zip(place_faces(rng, count, width, height), chips(count)):
        angle = rng.uniform(-MAX_ROTATION, MAX_ROTATION)
        paste_face(scene, chip, centre, side, angle, rng.uniform(0.6, 1.3), rng.uniform(-25, 25))
        faces.append((number, centre, side, angle))
    return np.clip(scene, 0, 255).astype(np.uint8), faces


def scenes(count, seed, paths):
    """Yield (image, faces) for the first `count` scenes; faces are drawn without replacement, seeded."""
    order = np.random.default_rng(seed).permutation(len(paths))
    state = {"next": 0}

    def chips(n):
        numbers = [int(order[(state["next"] + k) % len(order)]) for k in range(n)]
        state["next"] += n
        return [(number, cv2.imread(paths[number], cv2.IMREAD_COLOR)) for number in numbers]

    for index in range(count):
        yield make_scene(seed, index, chips)
