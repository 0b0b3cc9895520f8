//! The examples' 3D scene: a cube spinning over a floor, unlit, so its colours reach windows and
//! consumers as they are (checked in screenshots by geyser-bevy's tests).

use bevy::prelude::*;

/// The background (clear colour).
pub const BACKGROUND: Color = Color::srgb(0.05, 0.07, 0.15);
/// The spinning cube.
pub const CUBE: Color = Color::srgb(1.0, 0.5, 0.0);
/// The floor.
pub const FLOOR: Color = Color::srgb(0.2, 0.6, 0.3);

/// Marks what spins.
#[derive(Component)]
pub struct Spin;

/// Spawns the cube and the floor.
pub fn scene(
    commands: &mut Commands,
    meshes: &mut Assets<Mesh>,
    materials: &mut Assets<StandardMaterial>,
) {
    let unlit = |color| StandardMaterial {
        base_color: color,
        unlit: true,
        ..default()
    };
    commands.spawn((
        Mesh3d(meshes.add(Cuboid::new(1.5, 1.5, 1.5))),
        MeshMaterial3d(materials.add(unlit(CUBE))),
        Transform::from_xyz(0.0, 1.0, 0.0),
        Spin,
    ));
    commands.spawn((
        Mesh3d(meshes.add(Plane3d::default().mesh().size(6.0, 6.0))),
        MeshMaterial3d(materials.add(unlit(FLOOR))),
    ));
}

/// Turns what spins.
pub fn spin(time: Res<Time>, mut cubes: Query<&mut Transform, With<Spin>>) {
    for mut t in &mut cubes {
        t.rotation = Quat::from_rotation_y(time.elapsed_secs()) * Quat::from_rotation_x(0.4);
    }
}

/// Where the scene is seen from.
pub fn eye() -> Transform {
    Transform::from_xyz(0.0, 2.5, 6.0).looking_at(Vec3::new(0.0, 0.5, 0.0), Vec3::Y)
}
