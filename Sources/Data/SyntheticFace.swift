// The synthetic face: one procedurally drawn portrait per label row, in which every CelebA
// attribute has a visible cue, with pose, lighting, background and noise as nuisances.
import Foundation
import Support
import Tensors

/// How a face is drawn. Each attribute moves one or more continuous traits by an effect, and
/// each trait also varies by itself: the ratio of effect to spread sets how hard the attribute
/// is to see, from obvious (eyeglasses, hat, bald, beard, hair colour) through medium (smile,
/// bangs, lipstick, makeup, mustache) to subtle (oval face, pointy nose, attractive, narrow
/// eyes, big lips), roughly the order of difficulty classifiers show on real CelebA.
/// Correlated labels share no cue by construction; they co-occur in the same faces (Male with
/// No_Beard, lipstick and makeup, as in CelebA), which is what lets a network learn shortcuts.
public enum SyntheticFace {
  /// Draws the face of `labels` (40 values in CelebA's order) at `size` x `size` pixels; every
  /// random choice comes from `seed`.
  public static func render(labels: UnsafePointer<Bool>, seed: UInt64, size: Int) -> RGBImage {
    var rng = SplitMix64(seed: seed)
    let face = FaceTraits(Labels(values: labels), &rng)
    var canvas = Canvas(
      size: size, centreX: Float(size) * face.centre.x, centreY: Float(size) * face.centre.y,
      pixelsPerUnit: Float(size) * face.scale, roll: face.roll)
    face.draw(on: &canvas, seed: UInt32(truncatingIfNeeded: rng.next()))
    canvas.blur(sigma: face.blur * Float(size) / 64)
    var pixels = [UInt8](repeating: 0, count: size * size * 3)
    for i in 0..<(size * size * 3) {
      let noisy = canvas.pixels[i] + face.noise * rng.normal()
      pixels[i] = UInt8(max(0, min(255, (noisy * 255).rounded())))
    }
    return RGBImage(width: size, height: size, pixels: pixels)
  }
}

extension SplitMix64 {
  /// Uniform in [low, high).
  mutating func uniform(_ low: Float, _ high: Float) -> Float { low + (high - low) * uniform() }

  /// A trait: `base + effect * label + spread * N(0, 1)`.
  mutating func trait(_ base: Float, _ effect: Float, _ label: Float, spread: Float) -> Float {
    base + effect * label + spread * normal()
  }

  mutating func chance(_ probability: Float) -> Bool { uniform() < probability }

  mutating func pick<T>(_ choices: [T]) -> T { choices[Int(next() % UInt64(choices.count))] }
}

/// The continuous traits of one face, in face units (the face's half-width is 1; v grows
/// downwards; the eyes are at v = -0.22, the mouth near 0.6, the chin at 1.3).
struct FaceTraits {
  // Nuisances: where the face is, how it is lit, what is behind it.
  var centre: SIMD2<Float>
  var scale: Float
  var roll: Float
  var yaw: Float
  var pitch: Float
  var light: SIMD2<Float>
  var exposure: Float
  var cast: Colour
  var background: (Colour, Colour, Colour)
  var backgroundPattern: Int
  var noise: Float
  var blur: Float

  // Head and skin.
  var faceWidth: Float
  var faceHeight: Float
  var jawTaper: Float
  var squareness: Float
  var skin: Colour
  var skinTexture: Float
  var asymmetry: Float
  var neckWidth: Float
  var doubleChin: Float
  var wrinkles: Float
  var cheekboneHeight: Float
  var cheekboneStrength: Float
  var rosyCheeks: Float

  // Hair.
  var hairColour: Colour
  var grayStrands: Float
  var hairLength: Float
  var hairVolume: Float
  var bald: Bool
  var recession: Float
  var bangs: Float
  var bangsSweep: Float
  var waviness: Float
  var straightness: Float
  var sideburns: Bool

  // Facial hair: 0 none, 1 full.
  var beard: Float
  var goatee: Float
  var mustache: Float
  var stubble: Float

  // Eyes and brows.
  var eyeOpening: Float
  var eyeWidth: Float
  var iris: Colour
  var eyeShadow: Float
  var eyeShadowColour: Colour
  var eyeliner: Float
  var bags: Float
  var browArch: Float
  var browThickness: Float
  var glasses: Bool
  var sunglasses: Bool
  var frameColour: Colour

  // Nose and mouth.
  var noseWidth: Float
  var noseLength: Float
  var nosePoint: Float
  var mouthWidth: Float
  var smile: Float
  var mouthOpening: Float
  var upperLip: Float
  var lowerLip: Float
  var lipColour: Colour

  // Accessories.
  var hat: Bool
  var hatColour: Colour
  var hatBrim: Bool
  var earrings: Bool
  var earringColour: Colour
  var earringSize: Float
  var necklace: Bool
  var necklaceColour: Colour
  var necktie: Bool
  var tieColour: Colour
  var clothesColour: Colour

  init(_ labels: Labels, _ rng: inout SplitMix64) {
    let male = labels.weight(.male)
    let young = labels.weight(.young)
    let attractive = labels.weight(.attractive)

    centre = SIMD2(0.5 + 0.03 * rng.normal(), 0.53 + 0.03 * rng.normal())
    scale = 0.23 * (1 + 0.07 * rng.normal())
    roll = 0.09 * rng.normal()
    yaw = 0.12 * rng.normal()
    pitch = 0.05 * rng.normal()
    light = SIMD2(rng.uniform(-0.5, 0.5), rng.uniform(-0.3, 0.3))
    exposure = rng.uniform(0.75, 1.15)
    cast = Colour(1 + 0.06 * rng.normal(), 1 + 0.03 * rng.normal(), 1 + 0.06 * rng.normal())
    background = (randomColour(&rng), randomColour(&rng), randomColour(&rng))
    backgroundPattern = Int(rng.next() % 4)
    noise = rng.uniform(0.005, 0.035)
    blur = labels[.blurry] ? rng.uniform(1.1, 2.0) : max(0, rng.uniform(-0.4, 0.6))

    let chubby = labels.weight(.chubby)
    faceWidth = rng.trait(0.97, 0.08, male, spread: 0.035) + 0.17 * chubby
    let oval = labels.weight(.ovalFace)
    faceHeight = rng.trait(1.26, 0.09, oval, spread: 0.05) - 0.05 * chubby
    jawTaper = rng.trait(0.26, -0.1, male, spread: 0.05) + 0.06 * oval - 0.1 * chubby
    squareness = max(2, rng.trait(2.35, 0.3, male, spread: 0.12) - 0.3 * oval)
    let pale = labels.weight(.paleSkin)
    let tone = min(1, max(0, 0.25 + 0.22 * abs(rng.normal())))
    let lightest = Colour(0.94, 0.79, 0.68)
    let darkest = Colour(0.45, 0.31, 0.22)
    skin = lightest + (darkest - lightest) * tone
    if pale > 0 { skin = Colour(0.97, 0.89, 0.85) + 0.02 * Colour(rng.normal(), rng.normal(), rng.normal()) }
    skinTexture = max(0, rng.trait(0.045, -0.025, attractive, spread: 0.012) + 0.02 * (1 - young))
    asymmetry = rng.trait(0.05, -0.035, attractive, spread: 0.015)
    neckWidth = rng.trait(0.44, 0.1, male, spread: 0.03) + 0.08 * chubby
    doubleChin = labels[.doubleChin] ? rng.uniform(0.6, 1) : 0
    wrinkles = labels[.young] ? 0 : rng.uniform(0.5, 1)
    let cheekbones = labels.weight(.highCheekbones)
    cheekboneHeight = rng.trait(0.2, -0.12, cheekbones, spread: 0.04)
    cheekboneStrength = rng.trait(0.12, 0.12, cheekbones, spread: 0.04) + 0.04 * labels.weight(.smiling)
    rosyCheeks = labels[.rosyCheeks] ? rng.uniform(0.35, 0.6) : rng.uniform(0, 0.08)

    // Hair colour: the (nearly exclusive) colour labels; none gives red, auburn or a dark
    // brown between the black and brown classes, as unlabelled CelebA hair often is.
    let shade = 0.06 * rng.normal()
    if labels[.grayHair] {
      hairColour = Colour(repeating: 0.62 + shade) + Colour(0, 0, 0.02)
    } else if labels[.blondHair] {
      hairColour = Colour(0.86, 0.72, 0.45) + Colour(shade, shade, 0.5 * shade)
    } else if labels[.blackHair] {
      hairColour = Colour(0.07, 0.06, 0.06) + Colour(repeating: abs(shade) * 0.5)
    } else if labels[.brownHair] {
      hairColour = Colour(0.38, 0.24, 0.14) + Colour(shade, shade * 0.8, shade * 0.5)
    } else {
      hairColour =
        rng.pick([Colour(0.55, 0.22, 0.1), Colour(0.22, 0.14, 0.09), Colour(0.45, 0.3, 0.2)])
        + Colour(repeating: shade)
    }
    grayStrands = labels[.young] ? 0 : rng.uniform(0, 0.35)
    let longHair: Float = male > 0 ? (rng.chance(0.1) ? 1 : 0) : (rng.chance(0.8) ? 1 : 0)
    hairLength = longHair > 0 ? rng.uniform(1.1, 2.4) : rng.uniform(-0.5, -0.15)
    hairVolume = rng.uniform(0.05, 0.2)
    bald = labels[.bald]
    recession = labels[.recedingHairline] ? rng.uniform(0.3, 0.5) : max(0, rng.uniform(-0.1, 0.08))
    bangs = labels[.bangs] ? rng.uniform(0.55, 0.9) : 0
    bangsSweep = rng.uniform(-0.3, 0.3)
    waviness = labels[.wavyHair] ? rng.uniform(0.6, 1) : (labels[.straightHair] ? 0 : rng.uniform(0.2, 0.5))
    straightness = labels[.straightHair] ? rng.uniform(0.6, 1) : rng.uniform(0, 0.3)
    sideburns = labels[.sideburns]

    beard = labels[.noBeard] ? 0 : rng.uniform(0.8, 1)
    goatee = labels[.goatee] ? rng.uniform(0.7, 1) : 0
    mustache = labels[.mustache] ? rng.uniform(0.7, 1) : 0
    stubble = labels[.fiveOClockShadow] ? rng.uniform(0.35, 0.6) : (male > 0 ? rng.uniform(0, 0.1) : 0)
    if beard > 0, goatee == 0, mustache == 0, rng.chance(0.5) {
      // A beard label without goatee or mustache is often a short full beard.
      beard *= 0.8
    }

    let makeup = labels.weight(.heavyMakeup)
    eyeOpening = max(0.025, rng.trait(0.085, -0.035, labels.weight(.narrowEyes), spread: 0.012) + 0.008 * attractive)
    eyeWidth = rng.trait(0.19, 0.015, attractive, spread: 0.012)
    iris = rng.pick([Colour(0.3, 0.18, 0.1), Colour(0.2, 0.35, 0.55), Colour(0.3, 0.4, 0.25), Colour(0.15, 0.1, 0.07)])
    eyeShadow = makeup > 0 ? rng.uniform(0.4, 0.75) : 0
    eyeShadowColour = rng.pick([
      Colour(0.45, 0.3, 0.5), Colour(0.35, 0.25, 0.2), Colour(0.3, 0.35, 0.55), Colour(0.6, 0.35, 0.4),
    ])
    eyeliner = makeup > 0 ? rng.uniform(0.7, 1) : rng.uniform(0.2, 0.45)
    bags = labels[.bagsUnderEyes] ? rng.uniform(0.3, 0.55) : rng.uniform(0, 0.1)
    browArch = rng.trait(0.05, 0.1, labels.weight(.archedEyebrows), spread: 0.025)
    browThickness = rng.trait(0.038, 0.035, labels.weight(.bushyEyebrows), spread: 0.008) + 0.01 * male
    glasses = labels[.eyeglasses]
    sunglasses = glasses && rng.chance(0.15)
    frameColour = rng.pick([
      Colour(0.05, 0.05, 0.05), Colour(0.3, 0.2, 0.12), Colour(0.7, 0.7, 0.72), Colour(0.55, 0.1, 0.1),
    ])

    let bigNose = labels.weight(.bigNose)
    noseWidth = rng.trait(0.13, 0.05, bigNose, spread: 0.015) + 0.015 * male
    noseLength = rng.trait(0.42, 0.1, bigNose, spread: 0.035)
    nosePoint = rng.trait(0.2, 0.5, labels.weight(.pointyNose), spread: 0.15)
    let smiling = labels.weight(.smiling)
    mouthWidth = rng.trait(0.36, 0.05, smiling, spread: 0.025) + 0.03 * male
    smile = rng.trait(0, 0.17, smiling, spread: 0.03)
    mouthOpening = labels[.mouthSlightlyOpen] ? rng.uniform(0.035, 0.08) : 0
    let bigLips = labels.weight(.bigLips)
    upperLip = rng.trait(0.05, 0.03, bigLips, spread: 0.01) - 0.01 * male
    lowerLip = rng.trait(0.065, 0.035, bigLips, spread: 0.012) - 0.01 * male
    let naturalLips = skin * Colour(0.8, 0.5, 0.5)
    lipColour =
      labels[.wearingLipstick]
      ? rng.pick([Colour(0.75, 0.08, 0.15), Colour(0.85, 0.3, 0.4), Colour(0.55, 0.05, 0.2), Colour(0.9, 0.45, 0.45)])
      : naturalLips

    hat = labels[.wearingHat]
    hatColour = randomColour(&rng)
    hatBrim = rng.chance(0.5)
    earrings = labels[.wearingEarrings]
    earringColour = rng.pick([Colour(0.95, 0.8, 0.3), Colour(0.9, 0.9, 0.92), Colour(0.8, 0.2, 0.3)])
    earringSize = rng.uniform(0.06, 0.11)
    necklace = labels[.wearingNecklace]
    necklaceColour = rng.pick([Colour(0.95, 0.8, 0.3), Colour(0.92, 0.92, 0.95), Colour(0.97, 0.95, 0.9)])
    necktie = labels[.wearingNecktie]
    tieColour = randomColour(&rng)
    clothesColour = randomColour(&rng) * rng.uniform(0.4, 1)
  }

  func draw(on canvas: inout Canvas, seed: UInt32) {
    drawBackground(on: &canvas, seed: seed)
    drawHairBehind(on: &canvas, seed: seed)
    drawBody(on: &canvas)
    drawHead(on: &canvas, seed: seed)
    drawFacialHair(on: &canvas, seed: seed)
    drawEyes(on: &canvas)
    drawNoseAndMouth(on: &canvas)
    drawHairInFront(on: &canvas, seed: seed)
    drawAccessories(on: &canvas)
    light(&canvas)
  }

  // MARK: Layers, back to front.

  private func drawBackground(on canvas: inout Canvas, seed: UInt32) {
    let (first, second, third) = background
    let pattern = backgroundPattern
    canvas.forEachPixel { u, v, p in
      let t = min(max(0.5 + (u + v) * 0.12, 0), 1)
      var c = first + (second - first) * t
      switch pattern {
      case 1: c += (third - c) * max(0, valueNoise(u * 0.6, v * 0.6, seed: seed ^ 0x55)) * 0.8
      case 2: c += (third - c) * (sin(u * 2.2 + v * 0.7) > 0.3 ? 0.5 : 0)
      case 3: c += (third - c) * max(0, 1 - ((u - 1.6) * (u - 1.6) + (v + 1.2) * (v + 1.2)) / 1.5)
      default: break
      }
      p[0] = c.x
      p[1] = c.y
      p[2] = c.z
    }
  }

  private var headTop: Float { -faceHeight - 0.22 - hairVolume }

  /// The hair behind the head: the crown, and for long hair the fall to the shoulders.
  private func drawHairBehind(on canvas: inout Canvas, seed: UInt32) {
    guard !bald || hairLength > 0 else { return }
    let crownRadius = SIMD2<Float>(faceWidth + 0.14 + hairVolume, faceHeight * 0.62 + 0.3 + hairVolume)
    let crownCentre: Float = -faceHeight * 0.38
    let length = hairLength
    let wave = waviness
    let halfWidth = faceWidth + 0.2 + hairVolume
    canvas.paint(u: -(halfWidth + 0.3)...(halfWidth + 0.3), v: (headTop - 0.1)...max(length + 0.2, 0)) { u, v in
      var d = ellipseDistance(u, v, 0, crownCentre, crownRadius.x, crownRadius.y)
      if length > 0 {
        // The fall: a box from the temples down to `length`, wider towards the shoulders.
        let widen = halfWidth + 0.1 * max(0, v)
        let side = abs(u) - widen + wave * 0.07 * sin(v * 9 + u)
        let box = max(side, max(v - length, crownCentre - v))
        d = min(d, box)
      }
      return bald ? max(d, -0.2 - v) : d
    } colour: { u, v in
      hairShade(u, v, seed: seed) * 0.8
    }
  }

  /// Hair colour with strands: straight hair has fine parallel streaks, wavy hair streaks
  /// that wave, neither a blotchy (curly) texture; older faces have gray strands.
  private func hairShade(_ u: Float, _ v: Float, seed: UInt32) -> Colour {
    let streak = sin(u * 38 + waviness * 3.2 * sin(v * 9)) * (0.5 * straightness + 0.5 * waviness)
    let curl = valueNoise(u * 9, v * 9, seed: seed) * (1 - max(straightness, waviness))
    var c = hairColour * (1 + 0.16 * streak + 0.18 * curl)
    if grayStrands > 0, valueNoise(u * 30, v * 4, seed: seed ^ 0x77) > 1 - 2 * grayStrands {
      c = Colour(repeating: 0.7)
    }
    return c
  }

  private func drawBody(on canvas: inout Canvas) {
    let neck = neckWidth
    let neckColour = skin * 0.85
    canvas.paint(u: -1...1, v: 0.6...3.2) { u, v in
      max(abs(u) - neck, 0.7 - v)
    } colour: { _, _ in
      neckColour
    }
    // The shoulders start just below the chin, as in CelebA's aligned crops, so that collars,
    // ties and necklaces are in the picture.
    let collar = faceHeight + 0.3
    let clothes = clothesColour
    canvas.paint(u: -3...3, v: collar...(collar + 2.5)) { u, v in
      ellipseDistance(u, v, 0, collar + 1.3, 2.4, 1.3)
    } colour: { _, v in
      clothes * (1 - 0.15 * (v - collar))
    }
    // The neckline: an open V of skin, or a shirt collar and a tie.
    if necktie {
      canvas.paint(u: -0.8...0.8, v: (collar - 0.1)...(collar + 1.2)) { u, v in
        max(abs(u) - 0.45 + (v - collar) * 0.3, max(collar - v, v - collar - 1))
      } colour: { _, _ in
        Colour(0.95, 0.95, 0.97)
      }
      let tie = tieColour
      canvas.paint(u: -0.4...0.4, v: collar...(collar + 1.4)) { u, v in
        let knot = max(abs(u) - 0.11, abs(v - collar - 0.1) - 0.09)
        let blade = max(abs(u) - 0.09 - (v - collar - 0.15) * 0.12, max(collar + 0.12 - v, v - collar - 1.3))
        return min(knot, blade)
      } colour: { u, _ in
        tie * (1 - 0.3 * abs(u) * 4)
      }
    } else {
      let skinColour = skin * 0.9
      canvas.paint(u: -0.8...0.8, v: (collar - 0.1)...(collar + 1)) { u, v in
        max(abs(u) - 0.55 + (v - collar) * 0.9, collar - v)
      } colour: { _, _ in
        skinColour
      }
    }
    if necklace {
      let chain = curve(SIMD2(-neck - 0.02, collar - 0.35), SIMD2(0, collar + 0.55), SIMD2(neck + 0.02, collar - 0.35))
      let metal = necklaceColour
      canvas.paint(u: -1...1, v: (collar - 0.5)...(collar + 0.5)) { u, v in
        strokeDistance(u, v, chain, radius: 0.035)
      } colour: { u, _ in
        metal * (0.85 + 0.15 * sin(u * 60))
      }
      canvas.paint(u: -0.2...0.2, v: collar...(collar + 0.4)) { u, v in
        ellipseDistance(u, v, 0, collar + 0.17, 0.08, 0.1)
      } colour: { _, _ in
        metal
      }
    }
  }

  /// The face outline: a superellipse that narrows towards the jaw.
  private func faceDistance(_ u: Float, _ v: Float, grow: Float = 0) -> Float {
    let x = u - yaw * 0.25
    let taper = 1 - jawTaper * min(max(v / faceHeight, 0), 1)
    let a = faceWidth * taper + grow
    let b = faceHeight + grow
    let f = pow(pow(abs(x / a), squareness) + pow(abs(v / b), squareness), 1 / squareness)
    return (f - 1) * min(a, b)
  }

  private func drawHead(on canvas: inout Canvas, seed: UInt32) {
    let skin = self.skin
    // Ears, with earrings hanging from the lobes.
    for side: Float in [-1, 1] {
      let earU = side * (faceWidth * 0.98) + yaw * 0.2
      canvas.paint(u: (earU - 0.25)...(earU + 0.25), v: -0.45...0.3) { u, v in
        ellipseDistance(u, v, earU, -0.08, 0.14, 0.28)
      } colour: { _, _ in
        skin * 0.9
      }
      if earrings {
        let metal = earringColour
        let radius = earringSize
        canvas.paint(u: (earU - 0.2)...(earU + 0.2), v: 0.1...0.55) { u, v in
          abs(ellipseDistance(u, v, earU, 0.22 + radius, radius, radius * 1.2)) - radius * 0.35
        } colour: { u, v in
          metal * (0.8 + 0.25 * max(0, -(u - earU) - (v - 0.2)))
        }
      }
    }
    if bald {
      canvas.paint(u: -1.3...1.3, v: (headTop - 0.1)...0) { u, v in
        ellipseDistance(u, v, yaw * 0.2, -faceHeight * 0.35, faceWidth * 1.01, faceHeight * 0.62 + 0.26)
      } colour: { u, v in
        // The shine on a bald scalp.
        skin * (1 + 0.25 * max(0, 1 - ((u + 0.3) * (u + 0.3) + (v + 1.1) * (v + 1.1)) * 4))
      }
    }
    let texture = skinTexture
    let asymmetry = self.asymmetry
    let turned = yaw
    canvas.paint(u: -1.4...1.4, v: -1.6...1.6) { u, v in
      faceDistance(u, v)
    } colour: { u, v in
      let grain: Float = 1 + texture * valueNoise(u * 7, v * 7, seed: seed ^ 0x31)
      // Shading: darker towards the sides of the face, by the yaw and the asymmetry.
      let side: Float = u - turned * 0.25
      let edge: Float = 0.12 * max(0, abs(side) - 0.55)
      let turn: Float = (0.08 + asymmetry) * side * turned * 2
      return skin * (grain * (1 - edge - turn))
    }
    if doubleChin > 0 {
      let fold = curve(SIMD2(-0.42, faceHeight - 0.02), SIMD2(0, faceHeight + 0.26), SIMD2(0.42, faceHeight - 0.02))
      canvas.paint(u: -0.7...0.7, v: (faceHeight - 0.2)...(faceHeight + 0.4), opacity: doubleChin) { u, v in
        ellipseDistance(u, v, self.yaw * 0.25, self.faceHeight + 0.02, 0.48, 0.2)
      } colour: { _, _ in
        skin * 0.93
      }
      canvas.paint(u: -0.7...0.7, v: (faceHeight - 0.1)...(faceHeight + 0.4), opacity: 0.5 * doubleChin) { u, v in
        strokeDistance(u, v, fold, radius: 0.018)
      } colour: { _, _ in
        skin * 0.6
      }
    }
    let features = yaw
    // Cheekbones: a highlight with a shadow under it; rosy cheeks: soft pink patches.
    for side: Float in [-1, 1] {
      let cu = side * 0.56 + features
      canvas.paint(u: (cu - 0.45)...(cu + 0.45), v: -0.2...0.8, opacity: cheekboneStrength, softness: 0.12) { u, v in
        ellipseDistance(u, v, cu + side * 0.05, self.cheekboneHeight + 0.22, 0.24, 0.09, angle: side * 0.5)
      } colour: { _, _ in
        skin * 0.72
      }
      canvas.paint(u: (cu - 0.4)...(cu + 0.4), v: -0.3...0.6, opacity: cheekboneStrength * 1.2, softness: 0.1) { u, v in
        ellipseDistance(u, v, cu, self.cheekboneHeight, 0.2, 0.08, angle: side * 0.4)
      } colour: { _, _ in
        skin * 1.18
      }
      canvas.paint(u: (cu - 0.45)...(cu + 0.45), v: -0.2...0.8, opacity: rosyCheeks, softness: 0.14) { u, v in
        ellipseDistance(u, v, cu, 0.3, 0.2, 0.15)
      } colour: { _, _ in
        Colour(0.93, 0.42, 0.45)
      }
    }
    if wrinkles > 0 {
      var lines: [[SIMD2<Float>]] = (0..<3).map { i in
        let v = -0.95 + Float(i) * 0.1
        return curve(SIMD2(-0.4 + features, v), SIMD2(features, v - 0.05), SIMD2(0.4 + features, v))
      }
      for side: Float in [-1, 1] {
        lines.append(
          curve(
            SIMD2(side * 0.2 + features, 0.25), SIMD2(side * 0.36 + features, 0.45), SIMD2(side * 0.32 + features, 0.72)
          ))
        lines.append([SIMD2(side * 0.68 + features, -0.25), SIMD2(side * 0.8 + features, -0.3)])
        lines.append([SIMD2(side * 0.68 + features, -0.18), SIMD2(side * 0.8 + features, -0.14)])
      }
      for line in lines {
        canvas.paint(u: -1...1, v: -1.1...0.8, opacity: 0.45 * wrinkles) { u, v in
          strokeDistance(u, v, line, radius: 0.012)
        } colour: { _, _ in
          skin * 0.6
        }
      }
    }
  }

  /// Where a beard grows: the face below a line from the upper lip up to the sideburns.
  private func beardDistance(_ u: Float, _ v: Float) -> Float {
    let x = min(abs(u - yaw * 1.1) / (faceWidth * 0.95), 1)
    let top = 0.48 - 0.6 * x * x
    return max(faceDistance(u, v, grow: 0.04), top - v)
  }

  private func drawFacialHair(on canvas: inout Canvas, seed: UInt32) {
    let dark = hairColour * 0.75 + Colour(repeating: 0.02)
    let features = yaw
    if stubble > 0 {
      canvas.paint(u: -1.3...1.3, v: -0.3...1.5, opacity: stubble) { u, v in
        beardDistance(u, v)
      } colour: { u, v in
        let dots = valueNoise(u * 40, v * 40, seed: seed ^ 0x91)
        return self.skin * (0.72 + 0.12 * dots)
      }
    }
    if beard > 0 {
      canvas.paint(u: -1.3...1.3, v: -0.3...1.6, opacity: beard) { u, v in
        beardDistance(u, v) + 0.02 * valueNoise(u * 14, v * 14, seed: seed)
      } colour: { u, v in
        dark * (1 + 0.25 * valueNoise(u * 25, v * 25, seed: seed ^ 0x13))
      }
    }
    if goatee > 0 {
      canvas.paint(u: -0.6...0.6, v: 0.5...1.5, opacity: goatee) { u, v in
        let chin = ellipseDistance(u, v, features, self.faceHeight - 0.3, 0.24, 0.3)
        return max(chin, self.faceDistance(u, v, grow: 0.03))
      } colour: { u, v in
        dark * (1 + 0.2 * valueNoise(u * 25, v * 25, seed: seed ^ 0x17))
      }
    }
    if mustache > 0 {
      let top = 0.56 - smile * 0.3
      let line = curve(
        SIMD2(-mouthWidth - 0.03 + features, top + 0.04), SIMD2(features, top - 0.12),
        SIMD2(mouthWidth + 0.03 + features, top + 0.04))
      // Darker and fuller than a beard, so that it shows on a bearded face too.
      let shade = dark * 0.6
      canvas.paint(u: -0.7...0.7, v: 0.2...0.8, opacity: mustache) { u, v in
        strokeDistance(u, v, line, radius: 0.06)
      } colour: { _, _ in
        shade
      }
    }
    if sideburns {
      for side: Float in [-1, 1] {
        let edge = side * (faceWidth - 0.08) + yaw * 0.25
        canvas.paint(u: (edge - 0.2)...(edge + 0.2), v: -0.5...0.4) { u, v in
          max(abs(u - edge) - 0.09, max(-0.45 - v, v - 0.3))
        } colour: { _, _ in
          dark * 0.95
        }
      }
    }
  }

  private func drawEyes(on canvas: inout Canvas) {
    let features = yaw
    for side: Float in [-1, 1] {
      let eu = side * 0.4 + features * 1.05
      let ev: Float = -0.22 + pitch + (side > 0 ? asymmetry : 0)
      if eyeShadow > 0 {
        let colour = eyeShadowColour
        canvas.paint(u: (eu - 0.35)...(eu + 0.35), v: (ev - 0.3)...(ev + 0.05), opacity: eyeShadow, softness: 0.05) {
          u, v in
          ellipseDistance(u, v, eu, ev - 0.07, self.eyeWidth + 0.06, 0.1)
        } colour: { _, _ in
          colour
        }
      }
      if bags > 0.02 {
        let crescent = curve(SIMD2(eu - 0.17, ev + 0.07), SIMD2(eu, ev + 0.2), SIMD2(eu + 0.17, ev + 0.07))
        canvas.paint(u: (eu - 0.3)...(eu + 0.3), v: ev...(ev + 0.3), opacity: bags, softness: 0.02) { u, v in
          strokeDistance(u, v, crescent, radius: 0.03)
        } colour: { _, _ in
          self.skin * Colour(0.62, 0.55, 0.6)
        }
      }
      let width = eyeWidth
      let opening = eyeOpening
      canvas.paint(u: (eu - 0.3)...(eu + 0.3), v: (ev - 0.2)...(ev + 0.2)) { u, v in
        ellipseDistance(u, v, eu, ev, width, opening)
      } colour: { u, v in
        let iris = self.iris
        let d = ((u - eu - self.yaw * 0.12) * (u - eu - self.yaw * 0.12) + (v - ev) * (v - ev)).squareRoot()
        if d < 0.035 { return Colour(0.03, 0.03, 0.03) }
        if d < 0.075 { return iris }
        return Colour(0.93, 0.92, 0.9)
      }
      let lid = curve(SIMD2(eu - width, ev), SIMD2(eu, ev - opening * 2.1), SIMD2(eu + width * 1.05, ev - 0.01))
      canvas.paint(u: (eu - 0.3)...(eu + 0.3), v: (ev - 0.2)...(ev + 0.1), opacity: eyeliner) { u, v in
        strokeDistance(u, v, lid, radius: 0.012 + 0.012 * self.eyeliner)
      } colour: { _, _ in
        Colour(0.08, 0.06, 0.06)
      }
      // The brow: a curve over the eye, arched (a high peak two-thirds out) or flat.
      let bv = ev - 0.26 - (bangs > 0 ? 0 : 0.02)
      let brow = curve(
        SIMD2(eu - side * 0.2, bv + 0.03), SIMD2(eu + side * 0.08, bv - 0.05 - browArch),
        SIMD2(eu + side * 0.26, bv + 0.07))
      let browColour = hairColour * 0.7 + Colour(0.05, 0.04, 0.03)
      canvas.paint(u: (eu - 0.4)...(eu + 0.4), v: (bv - 0.3)...(bv + 0.2)) { u, v in
        strokeDistance(u, v, brow, radius: self.browThickness)
      } colour: { _, _ in
        browColour
      }
    }
  }

  private func drawNoseAndMouth(on canvas: inout Canvas) {
    let features = yaw * 1.3
    let tip = -0.1 + noseLength + pitch
    let width = noseWidth
    let point = nosePoint
    let shadow = skin * 0.72
    // The bridge: a soft shadow line down one side.
    let bridge = [SIMD2(features - 0.06, -0.12), SIMD2(features - width * 0.6, tip - 0.06)]
    canvas.paint(u: -0.6...0.6, v: -0.3...0.6, opacity: 0.5, softness: 0.03) { u, v in
      strokeDistance(u, v, bridge, radius: 0.02)
    } colour: { _, _ in
      shadow
    }
    // The tip: a superellipse whose lower half sharpens into a point for pointy noses.
    canvas.paint(u: -0.5...0.5, v: (tip - 0.3)...(tip + 0.3), opacity: 0.9) { u, v in
      let x = (u - features) / width
      let y = (v - tip) / (width * 0.8)
      let n: Float = y > 0 ? 2 - 1.1 * point : 2
      let f = pow(pow(abs(x), n) + pow(abs(y), n), 1 / n)
      return (f - 1) * width * 0.7
    } colour: { u, v in
      self.skin * (1.02 - 0.12 * max(0, v - tip) / width)
    }
    for side: Float in [-1, 1] {
      canvas.paint(u: -0.5...0.5, v: (tip - 0.1)...(tip + 0.2)) { u, v in
        ellipseDistance(u, v, features + side * width * 0.55, tip + width * 0.45, width * 0.28, width * 0.16)
      } colour: { _, _ in
        self.skin * 0.4
      }
    }

    let mv = 0.62 + pitch
    let mu = yaw * 1.15
    let half = mouthWidth
    let smile = self.smile
    let opening = mouthOpening + (smile > 0.08 ? 0.015 : 0)
    /// The line between the lips: corners raised by the smile.
    func line(_ u: Float) -> Float {
      let x = (u - mu) / half
      return mv - smile * (x * x) + smile * 0.25
    }
    let upper = upperLip
    let lower = lowerLip
    let colour = lipColour
    if opening > 0 {
      canvas.paint(u: (mu - half - 0.1)...(mu + half + 0.1), v: (mv - 0.3)...(mv + 0.3)) { u, v in
        let x = (u - mu) / half
        let shape = max(0, 1 - x * x)
        let top = line(u) - opening * 0.2 * shape
        let bottom = line(u) + opening * shape
        return max(max(top - v, v - bottom), abs(u - mu) - half * 0.92)
      } colour: { u, v in
        // Teeth show in a smile.
        smile > 0.06 && v < line(u) + opening * 0.45 ? Colour(0.95, 0.94, 0.9) : Colour(0.25, 0.08, 0.08)
      }
    }
    canvas.paint(u: (mu - half - 0.1)...(mu + half + 0.1), v: (mv - 0.3)...(mv + 0.35)) { u, v in
      let x = (u - mu) / half
      let shape = max(0, 1 - x * x)
      let base = line(u) - opening * 0.2 * shape
      // The upper lip with a dip in the middle (Cupid's bow).
      let bow = 1 - 0.35 * exp(-x * x * 40)
      let upperLip = max(max(base - upper * (0.3 + shape) * bow - v, v - base), abs(u - mu) - half)
      let bottom = line(u) + opening * shape
      let lowerLip = max(max(bottom - v, v - bottom - lower * (0.2 + shape)), abs(u - mu) - half * 0.97)
      return min(upperLip, lowerLip)
    } colour: { _, v in
      colour * (v < line(0) ? 0.9 : 1.05)
    }
  }

  /// Hair over the forehead: down to the hairline (receding at the temples), or lower as bangs.
  private func drawHairInFront(on canvas: inout Canvas, seed: UInt32) {
    guard !bald else {
      // A ring of short hair above the ears.
      for side: Float in [-1, 1] {
        let edge = side * (faceWidth + 0.02)
        canvas.paint(u: (edge - 0.25)...(edge + 0.25), v: -0.8...(-0.1)) { u, v in
          ellipseDistance(u, v, edge, -0.45, 0.12, 0.3)
        } colour: { u, v in
          self.hairShade(u, v, seed: seed)
        }
      }
      return
    }
    let crownCentre: Float = -faceHeight * 0.38
    let radius = SIMD2<Float>(faceWidth + 0.1 + hairVolume * 0.6, faceHeight * 0.62 + 0.26 + hairVolume)
    let recession = self.recession
    let top = -faceHeight * 0.62 + 0.06
    let fringe = bangs
    let sweep = bangsSweep
    canvas.paint(u: -1.6...1.6, v: (headTop - 0.1)...0.2) { u, v in
      let x = abs(u - self.yaw * 0.25) / self.faceWidth
      // The hairline: high at the temples when receding, down the sides to the ears.
      var hairline = top - recession * 0.8 * min(max((x - 0.1) / 0.4, 0), 1) - recession * 0.3
      hairline += 0.55 * min(max((x - 0.8) / 0.2, 0), 1)
      if fringe > 0 {
        hairline = max(hairline, top + fringe * 0.42 + sweep * (u - self.yaw) * 0.25 + 0.03 * sin(u * 24))
      }
      return max(ellipseDistance(u, v, self.yaw * 0.2, crownCentre, radius.x, radius.y), v - hairline)
    } colour: { u, v in
      self.hairShade(u, v, seed: seed)
    }
  }

  private func drawAccessories(on canvas: inout Canvas) {
    let features = yaw
    if glasses {
      let frame = frameColour
      let sun = sunglasses
      for side: Float in [-1, 1] {
        let gu = side * 0.4 + features * 1.05
        let gv: Float = -0.2 + pitch
        canvas.paint(u: (gu - 0.4)...(gu + 0.4), v: (gv - 0.3)...(gv + 0.3)) { u, v in
          let x = (u - gu) / 0.28
          let y = (v - gv) / 0.19
          let f = pow(pow(abs(x), 4) + pow(abs(y), 4), 0.25)
          return sun ? (f - 1) * 0.19 : abs((f - 1) * 0.19) - 0.022
        } colour: { _, _ in
          sun ? Colour(0.06, 0.06, 0.08) : frame
        }
        let arm = [SIMD2(gu + side * 0.28, gv - 0.05), SIMD2(side * (faceWidth + 0.02) + features * 0.3, gv - 0.02)]
        canvas.paint(u: -1.3...1.3, v: (gv - 0.2)...(gv + 0.1)) { u, v in
          strokeDistance(u, v, arm, radius: 0.02)
        } colour: { _, _ in
          frame
        }
      }
      let bridge = curve(
        SIMD2(features * 1.05 - 0.13, -0.22 + pitch), SIMD2(features * 1.05, -0.28 + pitch),
        SIMD2(features * 1.05 + 0.13, -0.22 + pitch))
      canvas.paint(u: -0.5...0.5, v: -0.5...0) { u, v in
        strokeDistance(u, v, bridge, radius: 0.02)
      } colour: { _, _ in
        frame
      }
    }
    if hat {
      let colour = hatColour
      let crownCentre: Float = -faceHeight * 0.45
      let brimLine = -faceHeight * 0.5 + 0.02
      canvas.paint(u: -1.8...1.8, v: (headTop - 0.4)...(brimLine + 0.2)) { u, v in
        let crown = ellipseDistance(
          u, v, self.yaw * 0.2, crownCentre - 0.1, self.faceWidth + 0.24, self.faceHeight * 0.72 + 0.2)
        return max(crown, v - brimLine)
      } colour: { u, v in
        colour * (1 - 0.15 * (u - self.yaw) * 0.5 + 0.05 * sin(v * 20))
      }
      if hatBrim {
        canvas.paint(u: -1.8...1.8, v: (brimLine - 0.2)...(brimLine + 0.2)) { u, v in
          ellipseDistance(u, v, self.yaw * 0.3, brimLine, self.faceWidth + 0.45, 0.09)
        } colour: { _, _ in
          colour * 0.8
        }
      }
    }
  }

  /// Directional light across the image, exposure and colour cast.
  private func light(_ canvas: inout Canvas) {
    let direction = light
    let gain = exposure
    let cast = self.cast
    canvas.forEachPixel { u, v, p in
      let shade = gain * (1 + 0.18 * (direction.x * u + direction.y * v))
      p[0] = min(1, max(0, p[0] * shade * cast.x))
      p[1] = min(1, max(0, p[1] * shade * cast.y))
      p[2] = min(1, max(0, p[2] * shade * cast.z))
    }
  }
}

/// A colour for backgrounds and clothes: any hue, moderate saturation.
private func randomColour(_ rng: inout SplitMix64) -> Colour {
  let hue = rng.uniform() * 6
  let saturation = rng.uniform(0.15, 0.7)
  let value = rng.uniform(0.3, 0.95)
  let sector = Int(hue) % 6
  let f = hue - Float(Int(hue))
  let p = value * (1 - saturation)
  let q = value * (1 - saturation * f)
  let t = value * (1 - saturation * (1 - f))
  switch sector {
  case 0: return Colour(value, t, p)
  case 1: return Colour(q, value, p)
  case 2: return Colour(p, value, t)
  case 3: return Colour(p, q, value)
  case 4: return Colour(t, p, value)
  default: return Colour(value, p, q)
  }
}
