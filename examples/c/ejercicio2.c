/*
 * Ejemplo de uso de VirtualFree() (course notes, Universidad de Oviedo, Arquitectura de
 * Computadores), the solution exactly as the notes write it: typographic quotes straightened,
 * and the two #include lines added.
 *
 * Enunciado: Reservar y comprometer 4 paginas a partir de la direccion 0x01000000 y despues
 * liberarlas completamente. Enviar un mensaje a pantalla indicando si la liberacion ha tenido
 * exito o no. (The notes' solution reserves with MEM_RESERVE only; MEM_RELEASE frees the
 * reservation either way.)
 *
 * Build and run on Linux:
 *
 *     cargo build --release -p virtmem
 *     cc -std=gnu11 -Wno-implicit-int -Iinclude examples/c/ejercicio2.c \
 *        target/release/libvirtmem.a -lpthread -ldl -lm -o ejercicio2
 *     ./ejercicio2          # Exito en la liberacion
 */
#include <windows.h>
#include <stdio.h>

main()
{
    void *p;

    p = VirtualAlloc( (void *)0x01000000,
                      4*4096,
                      MEM_RESERVE,
                      PAGE_READWRITE );

    if ( VirtualFree( p, 0, MEM_RELEASE ) )
        printf("Exito en la liberacion");
    else
        printf("Fallo en la liberacion");
}
