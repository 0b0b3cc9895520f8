//! In-process sharing, headless on the test GPU with the validation layer on: in one Bevy
//! process, a second Vulkan context (Geyser's own device) writes a pattern into a texture that
//! Bevy imports and shows as an image (read back from Bevy's GPU image: the pattern); and a Bevy
//! camera renders a known colour into a texture made on Bevy's device, which the Vulkan
//! context imports and reads (the colour).

mod common;

use std::sync::Arc;
use std::time::Duration;

use bevy::camera::RenderTarget;
use bevy::core_pipeline::tonemapping::{DebandDither, Tonemapping};
use bevy::prelude::*;
use bevy::render::gpu_readback::{Readback, ReadbackComplete};
use common::{headless_app, spawn_role, ROLE};
use geyser::common::{TextureDescriptor, TextureFormat, TextureUsage};
use geyser::vulkan::{
    ContextOptions, DeviceSelector, Validation, VulkanTexture, VulkanTextureShareManager,
};
use geyser_bevy::{GeyserDevice, SharedImageAccess, SharedImages};
use geyser_harness::pattern::{frame_word, PatternWriter};
use geyser_harness::texels::TexelReader;

const WIDTH: u32 = 64;
const HEIGHT: u32 = 32;
const PATTERN_FRAME: u64 = 7;
const COLOUR: [u8; 4] = [10, 200, 30, 255];

/// The Vulkan context beside Bevy's device, and what it shares.
#[derive(Resource)]
struct Other {
    manager: Arc<VulkanTextureShareManager>,
    /// Bevy's render target, imported here.
    target: VulkanTexture,
    target_access: SharedImageAccess,
    frames: u32,
}

/// Not a test: the Bevy process. Does nothing unless `GB_ROLE` is set.
#[test]
fn child_role_entry() {
    if std::env::var(ROLE).as_deref() != Ok("shared") {
        return;
    }
    let mut app = headless_app(Duration::from_secs(300));
    app.add_systems(
        Update,
        (share.run_if(not(resource_exists::<Other>)), read_target),
    );
    let code = common::run::run(app);
    // The second context's own validation messages count too.
    let code = if geyser::vulkan::diagnostics::validation_error_count() > 0 {
        eprintln!("{:#?}", geyser::vulkan::diagnostics::validation_messages());
        4
    } else {
        code
    };
    std::process::exit(code.into());
}

/// Once Geyser is up on Bevy's device: share one texture each way.
fn share(
    device: Option<Res<GeyserDevice>>,
    shared: Res<SharedImages>,
    mut images: ResMut<Assets<Image>>,
    mut commands: Commands,
) {
    let Some(device) = device else { return };
    let manager = Arc::new(
        VulkanTextureShareManager::create(&ContextOptions {
            device: DeviceSelector::from_env(),
            validation: Validation::Required,
        })
        .expect("a second Vulkan context"),
    );
    // Into Bevy: written by the other context, shown by Bevy.
    let desc = TextureDescriptor::new(
        WIDTH,
        HEIGHT,
        TextureFormat::Rgba8Unorm,
        &[
            TextureUsage::CopyDst,
            TextureUsage::CopySrc,
            TextureUsage::TextureBinding,
        ],
    );
    let written = manager.create_texture(&desc).expect("texture");
    PatternWriter::new(&manager, desc.tight_size())
        .and_then(|w| w.write(&written, PATTERN_FRAME))
        .expect("pattern");
    let imported = device
        .import(manager.export(&written).expect("export"))
        .expect("import into Bevy's device");
    let (image, _access) = shared.add(imported, &mut images);
    commands
        .spawn(Readback::texture(image))
        .observe(check_import);

    // Out of Bevy: rendered by a Bevy camera, read by the other context.
    let desc = TextureDescriptor::new(
        WIDTH,
        HEIGHT,
        TextureFormat::Rgba8UnormSrgb,
        &[
            TextureUsage::RenderAttachment,
            TextureUsage::TextureBinding,
            TextureUsage::CopySrc,
        ],
    );
    let made = device
        .create_texture(&desc)
        .expect("texture on Bevy's device");
    let target = manager
        .import(device.export(&made).expect("export"))
        .expect("import into the other context");
    let (image, target_access) = shared.add(made, &mut images);
    let [r, g, b, a] = COLOUR;
    commands.spawn((
        Camera2d,
        Camera {
            clear_color: ClearColorConfig::Custom(Color::srgba_u8(r, g, b, a)),
            ..default()
        },
        Tonemapping::None,
        DebandDither::Disabled,
        Msaa::Off,
        RenderTarget::Image(image.into()),
    ));
    commands.insert_resource(Other {
        manager,
        target,
        target_access,
        frames: 0,
    });
    // `written` may go: Bevy's import holds the memory.
    drop(written);
}

fn check_import(readback: On<ReadbackComplete>, mut done: Local<bool>) {
    if *done {
        return;
    }
    let want = frame_word(PATTERN_FRAME).to_le_bytes();
    if readback.data.len() == (WIDTH * HEIGHT * 4) as usize
        && readback.data.chunks_exact(4).all(|t| t == want)
    {
        *done = true;
        println!("IMPORT OK");
    }
}

/// A few frames after the camera started, the other context reads its texture (taking its
/// turn from Bevy's frames) until it holds the colour; then the app ends.
fn read_target(other: Option<ResMut<Other>>, mut exit: MessageWriter<AppExit>) {
    let Some(mut other) = other else { return };
    other.frames += 1;
    if other.frames < 5 {
        return;
    }
    // A system must not block on the turn (see SharedImageAccess::try_lock): try next frame.
    let Some(turn) = other.target_access.try_lock() else {
        return;
    };
    let texels = {
        let _turn = turn;
        TexelReader::new(&other.manager)
            .and_then(|r| {
                r.read(
                    &other.target,
                    &[(1, 1), (WIDTH - 2, HEIGHT - 2)],
                    &[],
                    &[],
                    || Ok(()),
                )
            })
            .expect("reading Bevy's texture")
    };
    let close = |t: &[u8]| t.iter().zip(COLOUR).all(|(g, w)| g.abs_diff(w) <= 2);
    if texels.iter().all(close) {
        println!("EXPORT OK");
        exit.write(AppExit::Success);
    } else if other.frames >= 60 {
        println!("EXPORT WRONG {texels:?}");
        exit.write(AppExit::error());
    }
}

#[test]
fn bevy_shares_textures_with_another_vulkan_context_in_its_process() {
    let mut bevy = spawn_role("child_role_entry", "shared", &[]);
    let (code, lines) = bevy.wait_exit(Duration::from_secs(300));
    assert_eq!(code, Some(0), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.ends_with("IMPORT OK")),
        "Bevy showed the other context's texture: {lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.ends_with("EXPORT OK")),
        "the other context read Bevy's rendering: {lines:#?}"
    );
}
