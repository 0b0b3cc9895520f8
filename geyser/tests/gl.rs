//! Vulkan ↔ OpenGL through memory objects and DMA-BUFs, pixel-verified on lavapipe + llvmpipe
//! (headless EGL): every colour format both sides support, both directions, and the typed
//! errors for what one side cannot take. The DMA-BUF parts need a Vulkan device that imports
//! DMA-BUFs: lavapipe (where CI runs them, and where they must run), not NVIDIA's driver, on
//! which they are skipped with the reason.
#![cfg(target_os = "linux")]

mod common;

use geyser::common::{
    DmaBuf, DrmFourcc, DrmModifier, ExternalHandleType, TextureAspect, TextureDescriptor,
    TextureFormat, TextureUsage, FORMAT_TABLE,
};
use geyser::gl::{GlContext, GlSemaphore};
use geyser::vulkan::{TextureMemory, VulkanTexture, VulkanTextureShareManager};
use geyser::Error;

use common::{assert_validation_clean, expected_rgba, foreign_rgba, manager, pattern};

/// Odd sizes: rows whose byte length is no power of two.
const W: u32 = 67;
const H: u32 = 35;

fn usages() -> [TextureUsage; 3] {
    [
        TextureUsage::CopySrc,
        TextureUsage::CopyDst,
        TextureUsage::TextureBinding,
    ]
}

/// Whether `m` imports DMA-BUFs; false skips a test's DMA-BUF part with a note, except on
/// lavapipe, where CI relies on it running.
fn imports_dma_bufs(m: &VulkanTextureShareManager, what: &str) -> bool {
    let import = m.caps().unwrap().dma_buf.import;
    let name = &m.identity().name;
    assert!(
        import || !name.contains("llvmpipe"),
        "{name} no longer imports DMA-BUFs: {what} would not run"
    );
    if !import {
        eprintln!("skipped on {name} (imports no DMA-BUF): {what}");
    }
    import
}

/// The memories to test on `m`: opaque, and Geyser's host DMA-BUF where `m` imports DMA-BUFs.
fn memories(m: &VulkanTextureShareManager, what: &str) -> Vec<TextureMemory> {
    let mut v = vec![TextureMemory::Opaque];
    if imports_dma_bufs(m, what) {
        v.push(TextureMemory::HostDmaBuf);
    }
    v
}

fn gl() -> GlContext {
    GlContext::headless().expect("headless EGL (libegl1 + libegl-mesa0 installed?)")
}

/// GL's view of a whole texture, rows in memory order.
fn gl_bytes(tex: &geyser::gl::GlTexture) -> Vec<u8> {
    let d = tex.descriptor();
    tex.read_texels(0, 0, d.width, d.height)
        .expect("glGetTextureSubImage")
}

/// Colour formats GL has (the table's GL column).
fn gl_formats() -> impl Iterator<Item = TextureFormat> {
    FORMAT_TABLE
        .iter()
        .filter(|r| r.gl.is_some())
        .map(|r| r.format)
}

fn filled(
    manager: &VulkanTextureShareManager,
    desc: &TextureDescriptor,
    memory: &TextureMemory,
    seed: u32,
) -> (VulkanTexture, Vec<u8>) {
    let texture = manager
        .create_texture_in(desc, &Default::default(), memory)
        .unwrap_or_else(|e| panic!("{} in {memory:?}: {e}", desc.format));
    let bytes = pattern(
        desc.format,
        TextureAspect::Color,
        (W * H * desc.format.block_bytes()) as usize,
        seed,
    );
    manager
        .write_texture(&texture, TextureAspect::Color, &bytes)
        .expect("write");
    (texture, bytes)
}

#[test]
fn vulkan_to_gl_through_memory_objects_for_every_colour_format() {
    let m = manager();
    let gl = gl();
    assert!(
        gl.caps().memory_object_fd,
        "llvmpipe offers GL_EXT_memory_object_fd"
    );
    let mut checked = Vec::new();
    for format in gl_formats() {
        let desc = TextureDescriptor::new(W, H, format, &usages());
        let (texture, want) = filled(&m, &desc, &TextureMemory::Opaque, 7);
        let exported = m.export(&texture).unwrap();
        let tex = gl
            .import(&exported)
            .unwrap_or_else(|e| panic!("{format}: {e}"));
        assert_eq!(
            gl_bytes(&tex),
            want,
            "{format}: GL sees other bytes than Vulkan wrote"
        );
        checked.push(format);
    }
    assert_eq!(
        checked.len(),
        24,
        "every colour format of the table: {checked:?}"
    );
    assert_validation_clean();
}

#[test]
fn vulkan_to_gl_through_dma_buf_for_every_format_with_a_drm_fourcc() {
    let m = manager();
    let gl = gl();
    assert!(
        gl.caps().dma_buf_import,
        "headless Mesa EGL imports DMA-BUFs"
    );
    // lavapipe exports no DMA-BUF here (no /dev/udmabuf): Geyser's own host memory, a sealed
    // memfd both drivers map. Where the driver exports DMA-BUFs, its own export is used too.
    let mut kinds = Vec::new();
    if imports_dma_bufs(&m, "Vulkan → GL through host-memory DMA-BUFs") {
        kinds.push(TextureMemory::HostDmaBuf);
    }
    if m.caps().unwrap().dma_buf.export {
        kinds.push(TextureMemory::DmaBuf {
            modifiers: gl.importable_modifiers(DrmFourcc::Abgr8888),
        });
    }
    let mut checked = 0;
    for memory in &kinds {
        for format in gl_formats().filter(|f| f.info().drm_fourcc.is_some()) {
            let desc = TextureDescriptor::new(W, H, format, &usages());
            let (texture, want) = filled(&m, &desc, memory, 11);
            let exported = m.export(&texture).unwrap();
            assert_eq!(exported.info.handle_type, ExternalHandleType::DmaBuf);
            let buf = exported.to_dma_buf().unwrap();
            assert_eq!(buf.fourcc(), format.info().drm_fourcc.unwrap());
            let tex = gl
                .import(&exported)
                .unwrap_or_else(|e| panic!("{format} {memory:?}: {e}"));
            assert_eq!(gl_bytes(&tex), want, "{format} {memory:?}");
            checked += 1;
        }
    }
    assert!(checked >= 8 || kinds.is_empty(), "{checked} formats");
    assert_validation_clean();
}

#[test]
fn gl_writes_reach_vulkan_through_memory_objects_and_dma_bufs() {
    let m = manager();
    let gl = gl();
    for memory in memories(&m, "GL → Vulkan through host-memory DMA-BUFs") {
        for format in [
            TextureFormat::Rgba8Unorm,
            TextureFormat::Bgra8Unorm,
            TextureFormat::R16Unorm,
        ] {
            let desc = TextureDescriptor::new(W, H, format, &usages());
            let texture = m
                .create_texture_in(&desc, &Default::default(), &memory)
                .unwrap();
            let tex = gl.import(&m.export(&texture).unwrap()).unwrap();
            let want = pattern(
                format,
                TextureAspect::Color,
                (W * H * format.block_bytes()) as usize,
                3,
            );
            tex.upload(&want).unwrap();
            gl.finish_all(); // host sync: GL done before Vulkan reads
            texture.mark_initialized();
            let got = m.read_texture(&texture, TextureAspect::Color).unwrap();
            assert_eq!(
                got, want,
                "{format} {memory:?}: Vulkan sees other bytes than GL wrote"
            );
        }
    }
    assert_validation_clean();
}

#[test]
fn gl_samples_bgra_memory_with_red_and_blue_in_place() {
    let m = manager();
    let gl = gl();
    let desc = TextureDescriptor::new(4, 4, TextureFormat::Bgra8Unorm, &usages());
    for memory in memories(&m, "BGRA sampled from a host-memory DMA-BUF") {
        let texture = m
            .create_texture_in(&desc, &Default::default(), &memory)
            .unwrap();
        // B=10, G=20, R=30, A=255 in memory.
        m.write_texture(
            &texture,
            TextureAspect::Color,
            &[10, 20, 30, 255].repeat(16),
        )
        .unwrap();
        let tex = gl.import(&m.export(&texture).unwrap()).unwrap();
        // Render the texture into an RGBA8 framebuffer through a sampler: red must be 30.
        let rgba = render_sampled(&gl, &tex);
        assert_eq!(&rgba[..4], &[30, 20, 10, 255], "{memory:?}");
    }
}

/// Draws `tex` through a fragment shader into a 4x4 RGBA8 texture and reads the result.
fn render_sampled(gl: &GlContext, tex: &geyser::gl::GlTexture) -> Vec<u8> {
    use geyser::gl::glow::{self, HasContext};
    let g = gl.gl();
    let out = gl
        .create_texture(&TextureDescriptor::new(
            4,
            4,
            TextureFormat::Rgba8Unorm,
            &usages(),
        ))
        .unwrap();
    // SAFETY: plain GL calls on the current context with objects made here.
    unsafe {
        let vs = "#version 450\nvoid main(){vec2 p=vec2((gl_VertexID<<1)&2,gl_VertexID&2);gl_Position=vec4(p*2.0-1.0,0,1);}";
        let fs = "#version 450\nlayout(binding=0) uniform sampler2D t;out vec4 c;void main(){c=texelFetch(t,ivec2(gl_FragCoord.xy),0);}";
        let program = g.create_program().unwrap();
        for (kind, src) in [(glow::VERTEX_SHADER, vs), (glow::FRAGMENT_SHADER, fs)] {
            let s = g.create_shader(kind).unwrap();
            g.shader_source(s, src);
            g.compile_shader(s);
            assert!(
                g.get_shader_compile_status(s),
                "{}",
                g.get_shader_info_log(s)
            );
            g.attach_shader(program, s);
        }
        g.link_program(program);
        assert!(g.get_program_link_status(program));
        let fbo = g.create_framebuffer().unwrap();
        g.bind_framebuffer(glow::FRAMEBUFFER, Some(fbo));
        g.framebuffer_texture_2d(
            glow::FRAMEBUFFER,
            glow::COLOR_ATTACHMENT0,
            glow::TEXTURE_2D,
            Some(out.raw()),
            0,
        );
        let vao = g.create_vertex_array().unwrap();
        g.bind_vertex_array(Some(vao));
        g.use_program(Some(program));
        g.active_texture(glow::TEXTURE0);
        g.bind_texture(glow::TEXTURE_2D, Some(tex.raw()));
        g.viewport(0, 0, 4, 4);
        g.draw_arrays(glow::TRIANGLES, 0, 3);
        g.finish();
        g.bind_framebuffer(glow::FRAMEBUFFER, None);
        g.delete_framebuffer(fbo);
        g.delete_vertex_array(vao);
        g.delete_program(program);
    }
    out.read_texels(0, 0, 4, 4).unwrap()
}

#[test]
fn a_foreign_memfd_dma_buf_imports_into_vulkan_and_gl() {
    let m = manager();
    let gl = gl();
    let (w, h) = (64, 32);
    let desc = TextureDescriptor::new(
        w,
        h,
        TextureFormat::Rgba8Unorm,
        &[TextureUsage::CopySrc, TextureUsage::TextureBinding],
    );
    if !imports_dma_bufs(&m, "a foreign memfd DMA-BUF into Vulkan and GL") {
        return;
    }
    let buf = DmaBuf::builder(w, h, DrmFourcc::Abgr8888, DrmModifier::Linear)
        .add_plane(foreign_rgba(w, h, w * 4, 0), 0, 0, w * 4)
        .build()
        .unwrap();
    let texture = m.import_dma_buf(&buf, &desc).unwrap();
    assert_eq!(
        m.read_texture(&texture, TextureAspect::Color).unwrap(),
        expected_rgba(w, h)
    );
    let tex = gl.import_dma_buf(&buf, &desc).unwrap();
    assert_eq!(gl_bytes(&tex), expected_rgba(w, h));
    // A padded stride and an offset: EGL takes any layout; Vulkan without
    // VK_EXT_image_drm_format_modifier only its own linear layout (a typed refusal).
    let padded = DmaBuf::builder(w, h, DrmFourcc::Abgr8888, DrmModifier::Linear)
        .add_plane(foreign_rgba(w, h, 320, 4096), 0, 4096, 320)
        .build()
        .unwrap();
    assert_eq!(
        gl_bytes(&gl.import_dma_buf(&padded, &desc).unwrap()),
        expected_rgba(w, h)
    );
    match m.import_dma_buf(&padded, &desc) {
        Ok(t) => {
            assert!(
                m.caps().unwrap().drm_format_modifiers,
                "only a device with modifiers takes any stride"
            );
            assert_eq!(
                m.read_texture(&t, TextureAspect::Color).unwrap(),
                expected_rgba(w, h)
            );
        }
        Err(Error::InvalidDmaBuf {
            plane: Some(0),
            reason,
        }) => assert!(reason.contains("stride 320"), "{reason}"),
        Err(e) => panic!("expected InvalidDmaBuf, got {e}"),
    }
    assert_validation_clean();
}

#[test]
fn bad_plane_layouts_are_typed_errors_in_vulkan_and_gl() {
    let m = manager();
    let gl = gl();
    let (w, h) = (64, 32);
    let desc = TextureDescriptor::new(w, h, TextureFormat::Rgba8Unorm, &[TextureUsage::CopySrc]);
    let one = |stride: u32, offset: u32, size_stride: u32, modifier: DrmModifier| {
        DmaBuf::builder(w, h, DrmFourcc::Abgr8888, modifier)
            .add_plane(foreign_rgba(w, h, size_stride, 0), 0, offset, stride)
            .build()
            .unwrap()
    };
    let cases = [
        (
            "stride shorter than a row",
            one(200, 0, 256, DrmModifier::Linear),
        ),
        (
            "plane past the end of its buffer",
            one(256, 4096, 256, DrmModifier::Linear),
        ),
        (
            "offset not a texel multiple",
            one(256, 2, 256, DrmModifier::Linear),
        ),
    ];
    for (what, buf) in &cases {
        for (side, result) in [
            ("Vulkan", m.import_dma_buf(buf, &desc).err()),
            ("GL", gl.import_dma_buf(buf, &desc).err()),
        ] {
            assert!(
                matches!(result, Some(Error::InvalidDmaBuf { .. })),
                "{side}, {what}: {result:?}"
            );
        }
    }
    // A memfd a peer could still truncate under the importer (no F_SEAL_SHRINK).
    let loose = {
        use std::io::Write;
        let fd = rustix::fs::memfd_create("unsealed", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let mut f = std::fs::File::from(fd);
        f.write_all(&expected_rgba(w, h)).unwrap();
        DmaBuf::builder(w, h, DrmFourcc::Abgr8888, DrmModifier::Linear)
            .add_plane(f.into(), 0, 0, w * 4)
            .build()
            .unwrap()
    };
    for (side, result) in [
        ("Vulkan", m.import_dma_buf(&loose, &desc).err()),
        ("GL", gl.import_dma_buf(&loose, &desc).err()),
    ] {
        assert!(
            matches!(&result, Some(Error::InvalidDmaBuf { reason, .. }) if reason.contains("F_SEAL_SHRINK")),
            "{side}, unsealed memfd: {result:?}"
        );
    }
    // A tiled modifier neither lavapipe (no modifier extension) nor llvmpipe's EGL offers.
    let tiled = one(256, 0, 256, DrmModifier::from(0x0100_0000_0000_0001));
    assert!(matches!(
        m.import_dma_buf(&tiled, &desc),
        Err(Error::InvalidDmaBuf { .. })
    ));
    assert!(matches!(
        gl.import_dma_buf(&tiled, &desc),
        Err(Error::InvalidDmaBuf { .. })
    ));
    // The wrong number of planes and a descriptor that is not the buffer's.
    let two = DmaBuf::builder(w, h, DrmFourcc::Abgr8888, DrmModifier::Linear)
        .add_plane(foreign_rgba(w, h, 256, 0), 0, 0, 256)
        .add_plane(foreign_rgba(w, h, 256, 0), 1, 0, 256)
        .build();
    assert!(matches!(two, Err(Error::InvalidDmaBuf { .. })), "{two:?}");
    let wrong = TextureDescriptor::new(w, h, TextureFormat::R8Unorm, &[TextureUsage::CopySrc]);
    let ok = one(256, 0, 256, DrmModifier::Linear);
    assert!(matches!(
        m.import_dma_buf(&ok, &wrong),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        gl.import_dma_buf(&ok, &wrong),
        Err(Error::InvalidArgument { .. })
    ));
    assert_validation_clean();
}

#[test]
fn gl_refuses_memory_of_another_device_and_unsupported_paths_by_type() {
    let m = manager();
    let gl = gl();
    let desc = TextureDescriptor::new(16, 16, TextureFormat::Rgba8Unorm, &usages());
    let texture = m.create_texture(&desc).unwrap();
    let mut exported = m.export(&texture).unwrap();
    exported.info.device_uuid[0] ^= 0xff;
    assert!(matches!(
        gl.import(&exported),
        Err(Error::DeviceMismatch { .. })
    ));
    // Depth has no GL column.
    let depth = m
        .create_texture(&TextureDescriptor::new(
            16,
            16,
            TextureFormat::Depth32Float,
            &[TextureUsage::CopySrc],
        ))
        .unwrap();
    assert!(matches!(
        gl.import(&m.export(&depth).unwrap()),
        Err(Error::Unsupported { .. })
    ));
    // Mesa's GL has no semaphores; llvmpipe without /dev/udmabuf exports no DMA-BUF.
    let fd = std::os::fd::OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
    if !gl.caps().semaphore_fd {
        assert!(matches!(
            GlSemaphore::import(&gl, fd, false),
            Err(Error::Unsupported { .. })
        ));
    }
    let own = gl.create_texture(&desc).unwrap();
    match own.export_dma_buf() {
        Ok(buf) => {
            let back = m.import_dma_buf(&buf, &desc);
            assert!(
                back.is_ok()
                    || matches!(
                        back,
                        Err(Error::InvalidDmaBuf { .. } | Error::Unsupported { .. })
                    )
            );
        }
        // A typed refusal: llvmpipe without /dev/udmabuf has no export; NVIDIA's EGL lists
        // the extension and refuses the texture.
        Err(e) => assert!(matches!(e, Error::Unsupported { .. }), "{e}"),
    }
    // lavapipe exports no DMA-BUF here: a typed refusal, not a crash.
    if !m.caps().unwrap().dma_buf.export {
        let r = m.create_texture_in(
            &desc,
            &Default::default(),
            &TextureMemory::DmaBuf { modifiers: vec![] },
        );
        assert!(matches!(r, Err(Error::Unsupported { .. })), "{r:?}");
    }
    assert_validation_clean();
}

/// GL textures exported as DMA-BUFs (`EGL_MESA_image_dma_buf_export`) and imported into
/// Vulkan, pixel-verified. Neither machine here has both: lavapipe's EGL cannot export
/// without `/dev/udmabuf`, and NVIDIA's Vulkan imports no DMA-BUF (skipped there; its EGL
/// also refused the export, scripts/device/issue20.sh).
#[test]
#[ignore = "needs EGL_MESA_image_dma_buf_export and a Vulkan device that imports DMA-BUFs"]
fn gl_textures_exported_as_dma_bufs_import_into_vulkan() {
    let m = manager();
    let gl = gl();
    if !imports_dma_bufs(&m, "GL textures exported as DMA-BUFs into Vulkan") {
        return;
    }
    let desc = TextureDescriptor::new(W, H, TextureFormat::Rgba8Unorm, &usages());
    let tex = gl.create_texture(&desc).unwrap();
    let want = pattern(desc.format, TextureAspect::Color, (W * H * 4) as usize, 5);
    tex.upload(&want).unwrap();
    gl.finish_all();
    let buf = tex.export_dma_buf().expect("EGL_MESA_image_dma_buf_export");
    println!(
        "RESULT gl-export {} modifier {} planes {:?}",
        buf.fourcc(),
        geyser::common::modifier_name(u64::from(buf.modifier())),
        buf.layouts()
    );
    let texture = m
        .import_dma_buf(&buf, &desc)
        .expect("Vulkan import of GL's DMA-BUF");
    let got = m.read_texture(&texture, TextureAspect::Color).unwrap();
    println!(
        "RESULT gl-export-to-vulkan {}",
        if got == want { "verified" } else { "MISMATCH" }
    );
    assert_eq!(got, want);
    assert_validation_clean();
}

/// The GPU machine: Vulkan and GL hand a texture back and forth on the GPU through one shared
/// timeline semaphore (`GL_EXT_semaphore_fd` + `GL_NV_timeline_semaphore`): Vulkan writes
/// frame n and signals 2n+1, GL waits for it, reads the frame and signals 2n+2, Vulkan's next
/// write waits for that. 200 frames, each checked in GL.
#[test]
#[ignore = "needs GL_EXT_semaphore_fd + GL_NV_timeline_semaphore and exportable timelines (NVIDIA); scripts/device/issue20.sh runs it"]
fn vulkan_and_gl_hand_frames_over_with_a_shared_timeline() {
    use geyser::vulkan::{SharedTimelineSemaphore, TimelinePoint};
    use geyser_harness::pattern::{expected_texel, frame_word, PatternWriter};
    use std::sync::Arc;
    let m = manager();
    let gl = gl();
    assert!(
        GlSemaphore::supported(&gl, true),
        "GL has no timeline semaphores: {:?}",
        gl.caps()
    );
    let desc = TextureDescriptor::new(256, 128, TextureFormat::Rgba8Unorm, &usages());
    let texture = m.create_texture(&desc).unwrap();
    let tex = gl.import(&m.export(&texture).unwrap()).unwrap();
    let timeline = Arc::new(SharedTimelineSemaphore::new(&m, 0).unwrap());
    let gl_sem = GlSemaphore::import(&gl, timeline.export().unwrap(), true).unwrap();
    let writer = PatternWriter::new(&m, desc.tight_size()).unwrap();
    let point = |value| TimelinePoint {
        semaphore: timeline.clone(),
        value,
    };
    for n in 0..200u64 {
        let waits: Vec<_> = (n > 0).then(|| point(2 * n)).into_iter().collect();
        writer
            .write_synced(&texture, n, &waits, &[point(2 * n + 1)], false)
            .unwrap();
        gl_sem.wait(Some(2 * n + 1), &[&tex]).unwrap();
        let got = tex.read_texels(17, 33, 1, 1).unwrap();
        let index = 33 * 256 + 17;
        assert!(
            expected_texel(frame_word(n), index, 4).eq(got.iter().copied()),
            "frame {n}: {got:?}"
        );
        gl_sem.signal(Some(2 * n + 2), &[&tex]).unwrap();
    }
    timeline
        .wait(400, std::time::Duration::from_secs(10))
        .unwrap();
    writer.finish().unwrap();
    println!("RESULT gl-timeline-handoff 200 frames verified");
    assert_validation_clean();
}
